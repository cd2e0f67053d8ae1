package sequence_test

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authserver-dev/authserver/internal/sequence"
)

// BenchmarkBoltNextParallel is 64 concurrent callers (as the bench's 64
// connections) taking numbers for random users, each call waiting for its
// fsync: the store's group commit ("group"), next to bbolt's own DB.Batch
// with the 1 ms delay the store used before ("bbolt-batch", the same
// read-increment-put per call), in the same run. calls/commit is how many
// calls shared one fsync.
func BenchmarkBoltNextParallel(b *testing.B) {
	b.Run("group", func(b *testing.B) {
		var commits, calls atomic.Int64
		s, err := sequence.OpenBolt(filepath.Join(b.TempDir(), "s.db"), sequence.BoltOptions{
			Observer: sequence.Observer{Batch: func(_ string, n int, _ time.Duration, _ error) {
				commits.Add(1)
				calls.Add(int64(n))
			}},
		})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(rand.Uint64(), 1))
			for pb.Next() {
				if _, err := s.Next(context.Background(), "app", "user-"+strconv.Itoa(r.IntN(100_000))); err != nil {
					b.Error(err)
					return
				}
			}
		})
		if c := commits.Load(); c > 0 {
			b.ReportMetric(float64(calls.Load())/float64(c), "calls/commit")
		}
	})
	b.Run("bbolt-batch", func(b *testing.B) {
		db, err := bolt.Open(filepath.Join(b.TempDir(), "b.db"), 0o600, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		db.MaxBatchDelay = time.Millisecond
		bucket := []byte("sequences")
		if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucket); return err }); err != nil {
			b.Fatal(err)
		}
		var commits, calls atomic.Int64
		var last *bolt.Tx
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(rand.Uint64(), 2))
			for pb.Next() {
				key := []byte("app\x00user-" + strconv.Itoa(r.IntN(100_000)))
				err := db.Batch(func(tx *bolt.Tx) error {
					calls.Add(1)
					if tx != last { // runs under bbolt's writer lock
						last = tx
						commits.Add(1)
					}
					bk := tx.Bucket(bucket)
					var cur uint64
					if old := bk.Get(key); len(old) == 8 {
						cur = binary.BigEndian.Uint64(old)
					}
					return bk.Put(key, binary.BigEndian.AppendUint64(nil, cur+1))
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		if c := commits.Load(); c > 0 {
			b.ReportMetric(float64(calls.Load())/float64(c), "calls/commit")
		}
	})
}
