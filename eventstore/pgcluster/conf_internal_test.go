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

// The cluster's buffers are a quarter of the machine's memory, from the
// server's default to 8 GB, and its checkpoints come every 15 minutes or
// 4 GB of log.
func TestServerSettings_BuffersAQuarterOfTheMachineAndCheckpointsFarApart(t *testing.T) {
	for _, tc := range []struct {
		memory uint64
		want   string
	}{
		{0, "shared_buffers = 128MB\n"},                // unknown
		{256 << 20, "shared_buffers = 128MB\n"},        // below the default
		{2 << 30, "shared_buffers = 512MB\n"},          // a small machine
		{24 << 30, "shared_buffers = 6144MB\n"},        // this project's machine
		{(3 << 30) + 1000, "shared_buffers = 768MB\n"}, // whole megabytes
		{256 << 30, "shared_buffers = 8192MB\n"},       // capped
	} {
		conf := string(serverSettings{port: 5999, sharedBuffers: sharedBuffersFor(tc.memory)}.render())
		if !strings.Contains(conf, tc.want) || !strings.Contains(conf, "max_wal_size = 4GB\n") || !strings.Contains(conf, "checkpoint_timeout = 15min\n") {
			t.Errorf("settings on a machine with %d bytes:\n%s\nwant %q, max_wal_size = 4GB and checkpoint_timeout = 15min", tc.memory, conf, tc.want)
		}
	}
}
