package main

import (
	"net/url"
	"regexp"
	"strings"
)

// redacted replaces a password wherever one would be shown.
const redacted = "xxxxx"

// keywordPassword matches password=... in a keyword/value connection string,
// quoted or not.
var keywordPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// redactDatabaseURL returns s with any password replaced, for logs and
// messages: the userinfo password and a password query parameter of a
// postgres:// URL, or the password keyword of a keyword/value string.
func redactDatabaseURL(s string) string {
	if !strings.Contains(s, "://") {
		return keywordPassword.ReplaceAllString(s, "${1}"+redacted)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable database URL, not shown)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redacted)
		}
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", redacted)
		u.RawQuery = q.Encode()
	}
	return u.String()
}
