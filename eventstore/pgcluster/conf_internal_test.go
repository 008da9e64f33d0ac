package pgcluster

import (
	"strings"
	"testing"
)

func TestSocketDirFor_TheDataDirectoryWhenItsSocketPathFits(t *testing.T) {
	fits := "/srv/subs/data/postgres"
	longest := "/" + strings.Repeat("d", 103-len("/.s.PGSQL.65535")-1) // its socket path: 103 bytes
	for _, tc := range []struct {
		name, dir, want string
	}{
		{"a usual data directory", fits, fits},
		{"a space inside the path", "/home/Ada Lovelace/subs/postgres", "/home/Ada Lovelace/subs/postgres"},
		{"the longest path that fits", longest, longest},
		{"one byte longer: TCP only", longest + "d", ""},
		{"a comma would split the list", "/srv/a,b/postgres", ""},
		{"a quote would end the setting", "/srv/it's/postgres", ""},
		{"a double quote", `/srv/"q"/postgres`, ""},
		{"a backslash would escape", `/srv/a\b/postgres`, ""},
		{"trailing blank would be trimmed", "/srv/postgres ", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := socketDirFor(tc.dir); got != tc.want {
				t.Errorf("socketDirFor(%q) = %q, want %q", tc.dir, got, tc.want)
			}
		})
	}
}

func TestServerSettings_ListenOnTheSocketDirectoryOrNone(t *testing.T) {
	for _, tc := range []struct {
		socketDir, want string
	}{
		{"/srv/subs/data/postgres", "unix_socket_directories = '/srv/subs/data/postgres'\n"},
		{"", "unix_socket_directories = ''\n"},
	} {
		conf := string(serverSettings{port: 5999, socketDir: tc.socketDir}.render())
		if !strings.Contains(conf, tc.want) || !strings.Contains(conf, "listen_addresses = '127.0.0.1'\n") {
			t.Errorf("settings with socket directory %q:\n%s\nwant %q and TCP on 127.0.0.1", tc.socketDir, conf, tc.want)
		}
	}
}
