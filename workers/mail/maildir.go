package mail

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Maildir is a Sender that writes each e-mail as a file into a local maildir
// (tmp/, new/, cur/), for development and for machines without a mail server.
// Files are named <hex SHA-256 of the Message-ID>.eml, so sending the same
// Message-ID again — or concurrently — keeps one file, the first one written.
// Each file appears in new/ complete or not at all. A Maildir is safe for
// concurrent use, also by several processes sharing the directory.
type Maildir struct {
	dir, domain string
	unsynced    bool      // see Unsynced
	cur         *curIndex // shared by the copies Unsynced makes
}

var _ Sender = (*Maildir)(nil)

// NewMaildir creates dir and its tmp/, new/ and cur/ subdirectories (mode
// 0700: the files carry customers' personal data and reset links) when they
// do not exist, and returns a Maildir writing messages with Message-IDs in
// domain (empty means DefaultDomain).
func NewMaildir(dir, domain string) (*Maildir, error) {
	if domain == "" {
		domain = DefaultDomain
	}
	if err := validateDomain(domain); err != nil {
		return nil, fmt.Errorf("mail: invalid config: %w", err)
	}
	if dir == "" {
		return nil, fmt.Errorf("mail: invalid config: %w", fieldErr("dir", ErrRequired))
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("mail: create maildir: %w", err)
		}
	}
	return &Maildir{dir: dir, domain: domain, cur: &curIndex{}}, nil
}

// Unsynced returns a Maildir on the same directory whose sends do not wait
// for the disk (no fsync of the file, nor of new/), for a maildir thrown
// away with the run that fills it (`subs simulate`, whose database commits
// without waiting either): a crash there loses the run anyway. After a
// crash of the machine a message may be missing or cut short, so mail a
// customer must get never goes through it.
func (d *Maildir) Unsynced() *Maildir {
	c := *d
	c.unsynced = true
	return &c
}

// DeliversOnce is true: the maildir keeps one file per Message-ID, so a
// repeated Send delivers nothing again (see mail.DeliversOnce).
func (d *Maildir) DeliversOnce() bool { return true }

// Dir returns the maildir's root directory.
func (d *Maildir) Dir() string { return d.dir }

// FileName returns the name, inside new/ (or cur/ once a mail client has
// read it, with a ":2,<flags>" suffix), of the file holding the message with
// the given Message-ID.
func FileName(messageID string) string {
	sum := sha256.Sum256([]byte(messageID))
	return hex.EncodeToString(sum[:]) + ".eml"
}

// Send writes m into new/ unless a file with its Message-ID is already in
// new/ or cur/; see Sender for the contract. The file is written under tmp/,
// synced, and hard-linked into new/: a link refuses to replace an existing
// name, so of concurrent sends exactly one wins and the others find it there.
func (d *Maildir) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mail: maildir send: %w", err)
	}
	raw, err := Render(m, d.domain)
	if err != nil {
		return err
	}
	name := FileName(m.MessageID(d.domain))
	if d.read(name) {
		return nil
	}
	newDir := filepath.Join(d.dir, "new")
	err = d.deliver(raw, filepath.Join(newDir, name))
	if errors.Is(err, fs.ErrExist) {
		return nil // already sent, by an earlier or a concurrent Send
	}
	if err != nil {
		return fmt.Errorf("mail: maildir send: %w", err)
	}
	// The caller records the send once Send returns; sync new/ so the
	// directory entry survives a crash after that.
	if d.unsynced {
		return nil
	}
	if err := syncDir(newDir); err != nil {
		return fmt.Errorf("mail: maildir send: %w", err)
	}
	return nil
}

// deliver writes raw into a file under tmp/, syncs it and links it as
// path, which must not exist (an error wrapping fs.ErrExist if it does).
// Where the system can (Linux), the file under tmp/ has no name
// (O_TMPFILE): nothing to pick a name for, nor to remove after the link.
func (d *Maildir) deliver(raw []byte, path string) error {
	tmpDir := filepath.Join(d.dir, "tmp")
	if f, ok := openUnnamed(tmpDir); ok {
		defer f.Close()
		if err := d.write(f, raw); err != nil {
			return err
		}
		// Without /proc, the link fails: name a file then.
		if err := linkUnnamed(f, path); err == nil || errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	f, err := os.CreateTemp(tmpDir, filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after the link, or on failure: tmp/ never keeps a file
	if err := d.write(f, raw); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Link(f.Name(), path)
}

// write writes raw into f and syncs it: the file must be complete on disk
// before new/ names it, or a crash could leave a truncated message that a
// resend would then refuse to replace.
func (d *Maildir) write(f *os.File, raw []byte) error {
	if _, err := f.Write(raw); err != nil {
		return err
	}
	return d.sync(f)
}

func (d *Maildir) sync(f *os.File) error {
	if d.unsynced {
		return nil
	}
	return f.Sync()
}

// read reports whether the file is in cur/, where a mail client moves what
// it has seen (adding ":2,<flags>" to the name). One still in new/ is found
// by the link, which refuses its name.
func (d *Maildir) read(name string) bool {
	return d.cur.has(filepath.Join(d.dir, "cur"), name)
}

// racyInterval is how long after a directory's modification time a listing
// of it must have begun for the time to tell whether it changed since: a
// change within the same tick of the file system's clock leaves the time
// as it was (git's "racily clean" index entries). Two seconds cover the
// coarsest clocks (FAT's).
const racyInterval = 2 * time.Second

// curIndex is what cur/ held when it was last listed, with the directory's
// modification time then: a send lists cur/ again only when the directory
// changed since, one stat instead of a listing per message (in a year of
// the simulation, where no client reads, five system calls of seven).
type curIndex struct {
	mu       sync.Mutex
	modTime  time.Time
	listedAt time.Time
	names    map[string]bool // the files' names, without ":2,<flags>"
}

// has reports whether dir, cur/, holds the file name. An error reading the
// directory reports false: the send goes on, as a missing cur/ would let it.
func (c *curIndex) has(dir, name string) bool {
	fi, err := os.Stat(dir)
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.names == nil || !fi.ModTime().Equal(c.modTime) || c.listedAt.Sub(c.modTime) <= racyInterval {
		// The time is the stat's, from before the listing: a change in
		// between makes the next stat differ, and list again.
		listedAt := time.Now()
		names, err := readNames(dir)
		if err != nil {
			c.names = nil
			return false
		}
		c.names, c.modTime, c.listedAt = make(map[string]bool, len(names)), fi.ModTime(), listedAt
		for _, n := range names {
			n, _, _ = strings.Cut(n, ":")
			c.names[n] = true
		}
	}
	return c.names[name]
}

// readNames lists dir's names, unsorted (os.ReadDir sorts them).
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
