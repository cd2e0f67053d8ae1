package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authserver-dev/authserver/internal/sequence"
)

// storeUsers is how many users seedStore gives a sequence, so that the
// store file has enough pages for truncating it to half to cut into them.
const storeUsers = 3000

// seedStore makes the embedded store of dev in dataDir as a running server
// would (same code, same marker), with the clock floor on: storeUsers
// users get one number each, then user "c" 10, so the newest commit is
// c's last. It returns the highest number c got.
func seedStore(t *testing.T, dataDir string) uint64 {
	t.Helper()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := sequence.OpenBolt(filepath.Join(dataDir, "sequences.db"), sequence.BoltOptions{Floor: sequence.ClockFloor(time.Now)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < storeUsers; i += 16 {
				if _, err := s.Next(ctx, devAppKey, fmt.Sprintf("user-%05d", i)); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// c last, one call per commit: the newest commit holds c's highest.
	var high uint64
	for range 10 {
		v, err := s.Next(ctx, devAppKey, "c")
		if err != nil {
			t.Fatal(err)
		}
		high = v
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return high
}

// storeLayout reads what the damage cases need from a closed store file:
// its page size, the size its newest commit uses, the root page of the
// sequences bucket, and which meta page (0 or 1) holds the newest commit.
func storeLayout(t *testing.T, path string) (pageSize int, used int64, root uint64, newest int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pageSize = db.Info().PageSize
	err = db.View(func(tx *bolt.Tx) error {
		used = tx.Size()
		root = uint64(tx.Bucket([]byte("sequences")).Root())
		newest = int(tx.ID() % 2) // bbolt writes commit n's meta to page n%2
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pageSize, used, root, newest
}

func truncateTo(t *testing.T, path string, size func(int64) int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size(fi.Size())); err != nil {
		t.Fatal(err)
	}
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func devArgs(dataDir string, extra ...string) []string {
	return append([]string{"dev", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", dataDir}, extra...)
}

// storeDamage is one way the embedded store can be lost or broken while
// the server is stopped.
type storeDamage struct {
	name   string
	damage func(t *testing.T, dataDir, path string)
	want   string // in the one line
}

var storeDamages = []storeDamage{
	{"missing", func(t *testing.T, _, path string) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}, "is missing"},
	{"empty", func(t *testing.T, _, path string) {
		truncateTo(t, path, func(int64) int64 { return 0 })
	}, "is empty"},
	{"truncated to 8192 bytes", func(t *testing.T, _, path string) {
		truncateTo(t, path, func(int64) int64 { return 8192 })
	}, "is truncated"},
	{"truncated to half", func(t *testing.T, _, path string) {
		_, used, _, _ := storeLayout(t, path)
		truncateTo(t, path, func(size int64) int64 {
			if size/2 >= used {
				t.Fatalf("precondition: half the file (%d of %d bytes) still holds every used page (%d bytes)", size/2, size, used)
			}
			return size / 2
		})
	}, "is truncated"},
	{"damaged page type", func(t *testing.T, _, path string) {
		pageSize, _, root, _ := storeLayout(t, path)
		if root < 2 {
			t.Fatalf("precondition: the sequences bucket is inline (root page %d)", root)
		}
		// The page header's flags (offset 8) say branch, leaf, meta or
		// freelist; 0x55 is none of them.
		writeAt(t, path, int64(root)*int64(pageSize)+8, []byte{0x55, 0})
	}, "is damaged"},
	{"replaced by another store", func(t *testing.T, _, path string) {
		other := filepath.Join(t.TempDir(), "data")
		seedStore(t, other)
		b, err := os.ReadFile(filepath.Join(other, "sequences.db"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}, "was replaced"},
}

// TestEmbeddedStoreRefusesToStartOver damages a stopped server's store in
// each way an operator has met, and starts the real binary on it: exit 1,
// exactly one line on stderr naming what happened and the flag, and no
// panic, SIGBUS or goroutine dump. Then --accept-sequence-reset starts with
// a warning, and with the clock floor the numbers are above those handed
// out before. (Before the guard: missing and empty started silently with
// sequence 1, truncation died of SIGBUS, the damaged page panicked.)
func TestEmbeddedStoreRefusesToStartOver(t *testing.T) {
	t.Parallel()
	for _, d := range storeDamages {
		t.Run(d.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			high := seedStore(t, dataDir)
			path := filepath.Join(dataDir, "sequences.db")
			d.damage(t, dataDir, path)

			code, stdout, stderr := runBinary(t, devArgs(dataDir)...)
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if code != 1 || len(lines) != 1 || stdout != "" {
				t.Errorf("exit %d, %d stderr lines, want exit 1 and one line\nstdout:\n%s\nstderr:\n%s", code, len(lines), stdout, stderr)
			}
			for _, bad := range []string{"panic", "SIGBUS", "goroutine", "fatal error"} {
				if strings.Contains(stderr, bad) {
					t.Errorf("stderr holds %q:\n%s", bad, stderr)
				}
			}
			for _, want := range []string{"sequence store " + path, d.want, "--accept-sequence-reset", "sequence.clock_floor"} {
				if !strings.Contains(lines[0], want) {
					t.Errorf("the line %q does not say %q", lines[0], want)
				}
			}
			t.Logf("%s", lines[0])

			// Starting over on purpose: a warning, and numbers above the old.
			s := startDev(t, dataDir, "--accept-sequence-reset")
			if !strings.Contains(s.rc.stderr.String(), "--accept-sequence-reset") {
				t.Errorf("no warning about the reset:\n%s", s.rc.stderr)
			}
			if got := devSequence(t, s, "c"); got <= high {
				t.Errorf("after the reset with the clock floor, c got %d; it had %d before", got, high)
			}
		})
	}
}

// devSequence asks dev for a legacy signature of user and returns its sequence.
func devSequence(t *testing.T, s *server, user string) uint64 {
	t.Helper()
	resp, body := s.post(t, "/v1/registration-signatures", map[string]string{"X-API-Key": devAPIKey}, `{"userId":"`+user+`"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("registration-signatures: %s %s", resp.Status, body)
	}
	var sr struct{ Sequence uint64 }
	if err := json.Unmarshal(body, &sr); err != nil {
		t.Fatal(err)
	}
	return sr.Sequence
}

// TestEmbeddedStoreOlderCopyRefused restores an older copy of the store
// over the file (a backup from before further calls): the marker's last
// commit is newer, so the start is refused; without the guard the numbers
// handed out since the copy came again.
func TestEmbeddedStoreOlderCopyRefused(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"AUTHSERVER_SEQUENCE_CLOCK_FLOOR": "false"}
	s := startDevEnv(t, dataDir, env)
	devSequence(t, s, "c")
	if err := s.rc.stop(t); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dataDir, "sequences.db")
	backup, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s = startDevEnv(t, dataDir, env)
	second := devSequence(t, s, "c")
	if err := s.rc.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runBinary(t, devArgs(dataDir)...)
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "is older than when it was last used") {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and one line saying the file is older", code, stderr)
	}
	// Taken as it is on purpose, without the floor: the repeat the guard
	// warned about.
	s = startDevEnv(t, dataDir, env, "--accept-sequence-reset")
	if got := devSequence(t, s, "c"); got != second {
		t.Errorf("the older copy gave c %d; expected the repeat of %d that the refusal prevents", got, second)
	}
}

// TestEmbeddedStoreDamagedNewestMeta damages the meta page of the newest
// commit (c's last number): bbolt opens at the previous one. It cannot be
// told from a commit torn by a power cut, so the start goes on, with a
// warning; and with the clock floor c's next number is still above the
// rolled-back one (without it, c got that number again, silently).
func TestEmbeddedStoreDamagedNewestMeta(t *testing.T) {
	t.Parallel()
	for _, floor := range []bool{true, false} {
		t.Run(fmt.Sprintf("clock_floor=%t", floor), func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			high := seedStore(t, dataDir)
			path := filepath.Join(dataDir, "sequences.db")
			pageSize, _, _, newest := storeLayout(t, path)
			// Flip a byte of the meta's txid: its checksum no longer matches.
			off := int64(newest*pageSize) + 16 + 48
			b := make([]byte, 1)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.ReadAt(b, off)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			writeAt(t, path, off, []byte{b[0] ^ 0xff})
			if metaValid(t, path, int64(newest*pageSize)) {
				t.Fatal("precondition: the damaged meta page still validates")
			}

			s := startDevEnv(t, dataDir, map[string]string{"AUTHSERVER_SEQUENCE_CLOCK_FLOOR": fmt.Sprint(floor)})
			if !strings.Contains(s.rc.stderr.String(), "meta pages is damaged") {
				t.Errorf("no warning about the damaged meta page:\n%s", s.rc.stderr)
			}
			got := devSequence(t, s, "c")
			switch {
			case floor && got <= high:
				t.Errorf("with the clock floor c got %d after the rollback; it had %d", got, high)
			case !floor && got > high:
				// The documented limit: only the floor covers a rolled-back
				// commit that had been acknowledged. c's previous number
				// (made with the floor on) + 1 is not above its last.
				t.Errorf("without the clock floor c got %d after the rollback of %d; want a number not above it (the case only the floor covers)", got, high)
			}
		})
	}
}

// metaValid checks a bbolt meta page's checksum (FNV-64a of the 56 bytes
// before it, after the 16-byte page header).
func metaValid(t *testing.T, path string, off int64) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 64)
	if _, err := f.ReadAt(b, off+16); err != nil {
		t.Fatal(err)
	}
	h := fnv.New64a()
	h.Write(b[:56])
	return binary.LittleEndian.Uint64(b[56:]) == h.Sum64()
}
