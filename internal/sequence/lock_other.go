//go:build !unix

package sequence

import (
	"os"
	"time"
)

// lockFile is a no-op where flock(2) is missing: the file is inspected
// without the lock, and bbolt's own lock still keeps a second process out.
func lockFile(*os.File, time.Duration) error { return nil }
