//go:build !linux

package mail

import (
	"errors"
	"os"
)

// openUnnamed is Linux's O_TMPFILE; elsewhere the maildir names its
// temporary files.
func openUnnamed(string) (*os.File, bool) { return nil, false }

func linkUnnamed(*os.File, string) error { return errors.ErrUnsupported }
