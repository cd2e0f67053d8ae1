package sequence

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// The embedded store's guard against starting over silently.
//
// bbolt opens whatever file it finds: a missing or empty one becomes a new,
// empty store, so every user's sequence starts at 1 again; a truncated one
// is mapped and then read past its end (SIGBUS); a damaged page makes it
// panic. Each of these would hand out numbers again, or crash with a dump.
// So OpenBolt first checks the file against a marker kept beside it, and
// against its own meta pages, and refuses with one line naming what
// happened and what to do.

// storeBucket holds the store's identity (key "id"), which the marker names.
var storeBucket = []byte("store")

// marker is the content of the file beside the store (path + ".id"). It is
// written when the store is created and at every open and clean close.
type marker struct {
	StoreID string    `json:"store_id"`
	Created time.Time `json:"created"`
	// LastTxID is the store's last commit (bbolt transaction id) that this
	// marker saw: at open, after the open's own commit, and at clean close.
	// A file whose commit is older was rolled back or is an older copy.
	LastTxID uint64 `json:"last_txid"`
}

// resetHint ends every refusal: the two ways out.
const resetHint = "restore it from a backup, or start over on purpose with --accept-sequence-reset " +
	"(either way users can get numbers they already had, unless sequence.clock_floor is on)"

// markerPath is where the marker of the store at path lives.
func markerPath(path string) string { return path + ".id" }

func readMarker(path string) (*marker, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sequence store marker %s: %w", path, err)
	}
	var m marker
	if err := json.Unmarshal(b, &m); err != nil || m.StoreID == "" {
		return nil, fmt.Errorf("sequence store marker %s is not readable (%d bytes): restore it, or delete it to accept the store file as it is", path, len(b))
	}
	return &m, nil
}

// writeMarker replaces the marker atomically and durably: a crash leaves
// the old one or the new one.
func writeMarker(path string, m marker) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("sequence store marker: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("sequence store marker: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// fileState is what inspectFile found in a store file's meta pages.
type fileState struct {
	txid        uint64 // the commit bbolt will open at
	damagedMeta bool   // one of the two meta pages is not valid
}

// bbolt's on-disk meta page (go.etcd.io/bbolt/internal/common): a 16-byte
// page header, then magic, version, page size, flags (4 bytes each), the
// root bucket (root page, sequence), the freelist page, the high-water
// page id, the txid, and an FNV-64a checksum of everything before it.
const (
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	pageHeaderSize  = 16
	metaSize        = 64
	metaChecksumOff = 56
)

type metaPage struct {
	valid    bool
	pageSize uint32
	pgid     uint64 // high-water mark: the file must hold pages 0 .. pgid-1
	txid     uint64
}

func parseMeta(b []byte) metaPage {
	if len(b) < pageHeaderSize+metaSize {
		return metaPage{}
	}
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	le := binary.LittleEndian
	h := fnv.New64a()
	h.Write(m[:metaChecksumOff])
	mp := metaPage{
		pageSize: le.Uint32(m[8:]),
		pgid:     le.Uint64(m[40:]),
		txid:     le.Uint64(m[48:]),
	}
	mp.valid = le.Uint32(m[0:]) == boltMagic && le.Uint32(m[4:]) == boltVersion &&
		le.Uint64(m[metaChecksumOff:]) == h.Sum64() && mp.pageSize >= 512 && mp.pageSize <= 1<<24
	return mp
}

// inspectFile reads the two meta pages of a non-empty store file and checks
// that the file is as long as the newest valid one says, before bbolt maps
// it: bbolt would read the missing pages through the map and die of SIGBUS.
func inspectFile(f *os.File, size int64) (fileState, error) {
	read := func(off int64) []byte {
		b := make([]byte, pageHeaderSize+metaSize)
		if n, _ := f.ReadAt(b, off); n < len(b) {
			return nil
		}
		return b
	}
	m0 := parseMeta(read(0))
	pageSize := int64(os.Getpagesize())
	if m0.valid {
		pageSize = int64(m0.pageSize)
	}
	m1 := parseMeta(read(pageSize))
	if !m0.valid && !m1.valid {
		if size < 2*pageSize {
			return fileState{}, fmt.Errorf("is truncated (%d bytes, and neither meta page is readable)", size)
		}
		return fileState{}, errors.New("is damaged (neither of its two meta pages is valid)")
	}
	cur := m0
	if !m0.valid || m1.valid && m1.txid > m0.txid {
		cur = m1
	}
	need := int64(cur.pgid) * int64(cur.pageSize)
	if size < need || size < 2*int64(cur.pageSize) {
		return fileState{}, fmt.Errorf("is truncated (%d bytes, but its commit %d needs %d)", size, cur.txid, max(need, 2*int64(cur.pageSize)))
	}
	return fileState{txid: cur.txid, damagedMeta: !m0.valid || !m1.valid}, nil
}

// openGuarded is OpenBolt's work: check, open, compare with the marker,
// record the marker.
func openGuarded(path string, opts BoltOptions) (*bolt.DB, error) {
	inUse := fmt.Errorf("sequence store %s is in use by another process", path)
	mpath := markerPath(path)
	m, err := readMarker(mpath)
	if err != nil {
		return nil, err
	}
	refuse := func(what string) error {
		return fmt.Errorf("sequence store %s %s: %s", path, what, resetHint)
	}

	// What is on disk, checked under the file lock.
	var st fileState
	var lost string // non-empty: the store's content is gone or unusable
	fresh := false
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fresh = true
		if m != nil {
			lost = fmt.Sprintf("is missing, but %s says a store was created there on %s", filepath.Base(mpath), m.Created.UTC().Format(time.RFC3339))
		}
	case err != nil:
		return nil, fmt.Errorf("sequence store %s: %w", path, err)
	default:
		if err := lockFile(f, opts.LockTimeout); err != nil {
			f.Close()
			if errors.Is(err, bolterrors.ErrTimeout) {
				return nil, inUse
			}
			return nil, fmt.Errorf("sequence store %s: %w", path, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("sequence store %s: %w", path, err)
		}
		if fi.Size() == 0 {
			fresh = true
			if m != nil {
				lost = fmt.Sprintf("is empty (0 bytes), but %s says a store was created there on %s", filepath.Base(mpath), m.Created.UTC().Format(time.RFC3339))
			}
		} else if st, err = inspectFile(f, fi.Size()); err != nil {
			lost = err.Error()
		}
		f.Close() // releases the lock; bbolt takes its own
	}
	// reset refuses a lost store, or with AcceptReset moves it aside (empty:
	// the file is empty, nothing to keep) and starts a new one.
	reset := func(was string, empty bool) error {
		if !opts.AcceptReset {
			return refuse(was)
		}
		if err := moveAside(path, empty); err != nil {
			return err
		}
		opts.Warn("sequence store reset on purpose (--accept-sequence-reset): starting a new, empty store",
			"path", path, "was", was, "clock_floor", opts.Floor != nil)
		fresh = true
		return nil
	}
	if lost != "" {
		if err := reset(lost, fresh); err != nil {
			return nil, err
		}
		st = fileState{}
	}
	if st.damagedMeta {
		opts.Warn("sequence store: one of the two meta pages is damaged, so the store opened at the other one; "+
			"if the damaged page held the newest commit, that commit was rolled back (normal after a commit torn by a power cut, "+
			"whose numbers were never handed out; if it was acknowledged and the disk rotted, only sequence.clock_floor keeps its numbers from repeating)",
			"path", path, "opened_at_commit", st.txid)
	}

	db, id, txid, err := openAndTouch(path, opts.LockTimeout)
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, inUse
	}
	if err != nil {
		var d damagedError
		if !errors.As(err, &d) {
			return nil, fmt.Errorf("sequence store %s: %w", path, err)
		}
		if err := reset(err.Error(), false); err != nil {
			return nil, err
		}
		if db, id, txid, err = openAndTouch(path, opts.LockTimeout); err != nil {
			return nil, fmt.Errorf("sequence store %s: %w", path, err)
		}
	}

	// Compare with the marker.
	if m != nil && !fresh {
		problem := ""
		switch {
		case id != m.StoreID:
			problem = fmt.Sprintf("is not the store %s names (it was replaced by another store file)", filepath.Base(mpath))
		case st.txid < m.LastTxID && !(st.damagedMeta && st.txid+1 >= m.LastTxID):
			// A damaged newest meta page rolls back one commit: that was
			// warned about above.
			problem = fmt.Sprintf("is older than when it was last used (commit %d, but %d was committed before: "+
				"it was restored from an older copy or rolled back)", st.txid, m.LastTxID)
		}
		if problem != "" {
			if !opts.AcceptReset {
				db.Close()
				return nil, refuse(problem)
			}
			opts.Warn("sequence store taken as it is on purpose (--accept-sequence-reset)",
				"path", path, "was", problem, "clock_floor", opts.Floor != nil)
		}
	}
	created := time.Now().UTC()
	if m != nil && m.StoreID == id {
		created = m.Created
	}
	if id == "" {
		if id, txid, err = setStoreID(db); err != nil {
			db.Close()
			return nil, fmt.Errorf("sequence store %s: %w", path, err)
		}
	}
	if err := writeMarker(mpath, marker{StoreID: id, Created: created, LastTxID: txid}); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// damagedError is a panic or a corruption error from bbolt while opening.
type damagedError struct{ msg string }

func (e damagedError) Error() string { return "is damaged (" + e.msg + ")" }

// openAndTouch opens the file with bbolt, creates the buckets if needed and
// reads the pages every call will touch (the root, the first and last
// sequences), returning the store's id ("" if none yet) and the committed
// txid. A bbolt panic (a damaged page fails its assertions) becomes a
// damagedError.
func openAndTouch(path string, timeout time.Duration) (db *bolt.DB, id string, txid uint64, err error) {
	defer func() {
		if p := recover(); p != nil {
			// The file stays locked by the abandoned handle until the
			// process exits; the caller either exits or moves it aside.
			db, err = nil, damagedError{fmt.Sprint(p)}
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrChecksum) || errors.Is(err, bolterrors.ErrVersionMismatch) {
		return nil, "", 0, damagedError{err.Error()}
	}
	if err != nil {
		return nil, "", 0, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		bkt, err := tx.CreateBucketIfNotExists(boltBucket)
		if err != nil {
			return err
		}
		c := bkt.Cursor()
		c.First()
		c.Last()
		sb, err := tx.CreateBucketIfNotExists(storeBucket)
		if err != nil {
			return err
		}
		id = string(sb.Get([]byte("id")))
		return nil
	})
	if err == nil {
		err = db.View(func(tx *bolt.Tx) error { txid = uint64(tx.ID()); return nil })
	}
	if err != nil {
		db.Close()
		return nil, "", 0, damagedError{err.Error()}
	}
	return db, id, txid, nil
}

// setStoreID gives a store without one a fresh random id.
func setStoreID(db *bolt.DB) (id string, txid uint64, err error) {
	var b [16]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return "", 0, err
	}
	id = hex.EncodeToString(b[:])
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(storeBucket).Put([]byte("id"), []byte(id))
	})
	if err == nil {
		err = db.View(func(tx *bolt.Tx) error { txid = uint64(tx.ID()); return nil })
	}
	return id, txid, err
}

// moveAside keeps a damaged or truncated store file as evidence (path +
// ".damaged-<time>") so a new one can be created; an empty or missing one
// is just removed.
func moveAside(path string, empty bool) error {
	if empty {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sequence store %s: %w", path, err)
		}
		return nil
	}
	dst := path + ".damaged-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(path, dst); err != nil {
		return fmt.Errorf("sequence store %s: moving it aside: %w", path, err)
	}
	return nil
}

// closeMarker records the store's last commit in its marker at a clean
// close.
func closeMarker(db *bolt.DB, path string) error {
	var id string
	var txid uint64
	err := db.View(func(tx *bolt.Tx) error {
		txid = uint64(tx.ID())
		if b := tx.Bucket(storeBucket); b != nil {
			id = string(b.Get([]byte("id")))
		}
		return nil
	})
	if err != nil || id == "" {
		return err
	}
	mpath := markerPath(path)
	m, err := readMarker(mpath)
	if err != nil || m == nil || m.StoreID != id {
		return err
	}
	m.LastTxID = txid
	return writeMarker(mpath, *m)
}

// safeUpdate runs fn in one write transaction (DB.Update) and turns a
// bbolt panic (a damaged file) into an error.
func safeUpdate(db *bolt.DB, fn func(*bolt.Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sequence store is damaged: %v", p)
		}
	}()
	return db.Update(fn)
}
