//go:build faults

package faults

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	bolt "go.etcd.io/bbolt"
)

// committedPostgres reads the committed sequences of the fixture's
// application from the database.
func committedPostgres(t testing.TB, url string) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("reading committed sequences: %v", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT user_id, sequence FROM sequences WHERE application_key = $1", appKey)
	if err != nil {
		t.Fatalf("reading committed sequences: %v", err)
	}
	out := map[string]uint64{}
	for rows.Next() {
		var u string
		var v int64
		if err := rows.Scan(&u, &v); err != nil {
			t.Fatal(err)
		}
		out[u] = uint64(v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// committedBolt reads the committed sequences from a stopped server's
// embedded store file (bucket "sequences", key app NUL user, big-endian
// uint64: the layout of internal/sequence).
func committedBolt(t testing.TB, dataDir string) map[string]uint64 {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dataDir, "sequences.db"), 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("opening the embedded store: %v", err)
	}
	defer db.Close()
	out := map[string]uint64{}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("sequences"))
		if b == nil {
			return fmt.Errorf("no sequences bucket")
		}
		return b.ForEach(func(k, v []byte) error {
			app, user, ok := bytes.Cut(k, []byte{0})
			if !ok || len(v) != 8 {
				return fmt.Errorf("unexpected entry %q", k)
			}
			if string(app) == appKey {
				out[string(user)] = binary.BigEndian.Uint64(v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatalf("reading the embedded store: %v", err)
	}
	return out
}
