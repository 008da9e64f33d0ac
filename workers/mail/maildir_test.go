package mail_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/subs-engine/subs/workers/mail"
	"github.com/subs-engine/subs/workers/mail/mailtest"
)

// newMaildir returns a Maildir in a fresh directory and a function reading
// back the files in its new/.
func newMaildir(t *testing.T) (*mail.Maildir, func() []mailtest.Received) {
	t.Helper()
	d, err := mail.NewMaildir(filepath.Join(t.TempDir(), "mail"), mailtest.Domain)
	if err != nil {
		t.Fatal(err)
	}
	return d, func() []mailtest.Received {
		t.Helper()
		entries, err := os.ReadDir(filepath.Join(d.Dir(), "new"))
		if err != nil {
			t.Fatal(err)
		}
		var got []mailtest.Received
		for _, e := range entries {
			raw, err := os.ReadFile(filepath.Join(d.Dir(), "new", e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, mailtest.Received{Raw: raw})
		}
		return got
	}
}

func TestMaildir_contract(t *testing.T) {
	t.Parallel()
	mailtest.Run(t, func(t *testing.T) (mail.Sender, func() []mailtest.Received) {
		return newMaildir(t)
	})
}

// Unsynced skips the waits for the disk, nothing else of the contract.
func TestMaildir_Unsynced_contract(t *testing.T) {
	t.Parallel()
	mailtest.Run(t, func(t *testing.T) (mail.Sender, func() []mailtest.Received) {
		d, received := newMaildir(t)
		return d.Unsynced(), received
	})
}

func TestMaildir_layout(t *testing.T) {
	t.Parallel()
	d, received := newMaildir(t)
	for _, sub := range []string{"tmp", "new", "cur"} {
		fi, err := os.Stat(filepath.Join(d.Dir(), sub))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want a 0700 directory", sub, fi.Mode(), err)
		}
	}
	m := mailtest.Message(uuid.New())
	if err := d.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	name := mail.FileName(m.MessageID(mailtest.Domain))
	fi, err := os.Stat(filepath.Join(d.Dir(), "new", name))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("new/%s: %v; want a 0600 file", name, err)
	}
	if got := len(received()); got != 1 {
		t.Errorf("%d files in new/, want 1", got)
	}
	if entries, _ := os.ReadDir(filepath.Join(d.Dir(), "tmp")); len(entries) != 0 {
		t.Errorf("tmp/ keeps %d files, want none", len(entries))
	}
}

func TestMaildir_sameMessageIDKeepsOneFile(t *testing.T) {
	t.Parallel()
	d, received := newMaildir(t)
	m := mailtest.Message(uuid.New())
	for range 2 {
		if err := d.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	// Concurrent sends of one message race to link the same name.
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() { errs[i] = d.Send(context.Background(), m) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := len(received()); got != 1 {
		t.Errorf("%d files in new/, want 1", got)
	}
}

func TestMaildir_concurrentFirstSendsKeepOneFile(t *testing.T) {
	t.Parallel()
	d, received := newMaildir(t)
	m := mailtest.Message(uuid.New())
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() { errs[i] = d.Send(context.Background(), m) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := len(received()); got != 1 {
		t.Errorf("%d files in new/, want 1", got)
	}
	if entries, _ := os.ReadDir(filepath.Join(d.Dir(), "tmp")); len(entries) != 0 {
		t.Errorf("tmp/ keeps %d files, want none", len(entries))
	}
}

// A message a mail client has read, moved from new/ to cur/, is not written
// again, whether cur/ changed just before the first send or long before it
// (the send then trusts its listing of cur/ until the directory changes).
func TestMaildir_readMessageIsNotWrittenAgain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		curChanged time.Duration // how long before the first send cur/ last changed
	}{
		{"cur/ changed just before", 0},
		{"cur/ unchanged for an hour", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, received := newMaildir(t)
			cur := filepath.Join(d.Dir(), "cur")
			if tc.curChanged > 0 {
				past := time.Now().Add(-tc.curChanged)
				if err := os.Chtimes(cur, past, past); err != nil {
					t.Fatal(err)
				}
			}
			m := mailtest.Message(uuid.New())
			if err := d.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			// A mail client moves what it has shown from new/ to cur/, adding flags.
			name := mail.FileName(m.MessageID(mailtest.Domain))
			if err := os.Rename(filepath.Join(d.Dir(), "new", name), filepath.Join(cur, name+":2,S")); err != nil {
				t.Fatal(err)
			}
			if err := d.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			if got := len(received()); got != 0 {
				t.Errorf("%d files in new/ after a resend of a read message, want 0", got)
			}
		})
	}
}

func TestNewMaildir_refuses(t *testing.T) {
	t.Parallel()
	if _, err := mail.NewMaildir("", ""); err == nil {
		t.Error("NewMaildir(\"\") succeeded")
	}
	if _, err := mail.NewMaildir(t.TempDir(), "not a domain"); !errors.Is(err, mail.ErrInvalidDomain) {
		t.Errorf("NewMaildir with a bad domain = %v, want ErrInvalidDomain", err)
	}
}

func TestNewSender(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := mail.NewSender("", dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := s.(*mail.Maildir); !ok || d.Dir() != filepath.Join(dir, "mail") {
		t.Errorf("NewSender without SMTP URL = %T %v, want a Maildir at <dataDir>/mail", s, s)
	}
	s, err = mail.NewSender("smtp://127.0.0.1:2525", dir, "")
	if _, ok := s.(*mail.SMTP); err != nil || !ok {
		t.Errorf("NewSender with an SMTP URL = %T, %v; want *mail.SMTP", s, err)
	}
	if _, err := mail.NewSender("", "", ""); err == nil {
		t.Error("NewSender with neither SMTP URL nor data directory succeeded")
	}
}
