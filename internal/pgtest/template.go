package pgtest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// templateMu serialises building the template data directory within one
// process, so that parallel tests wait for one initdb instead of each
// running their own. It is the package's only mutable state; the template
// itself lives on disk and is shared between processes (see templateDir).
var templateMu sync.Mutex

// initdbArgs are the arguments that make the template in data. trust auth: the server listens on
// 127.0.0.1 only and lives for one test. --no-sync: a template lost in a
// crash is rebuilt (usableTemplate checks for a file initdb writes last).
// C locale: fast, and no dependency on installed locales. 1 MB WAL
// segments instead of 16: every cluster copies the template, and a 16 MB
// WAL file per test is most of the copy and of the I/O that tests running
// in parallel then wait for behind their own fsyncs.
func initdbArgs(data string) []string {
	return []string{
		"-D", data,
		"-U", "postgres", "-A", "trust", "--no-sync",
		"-E", "UTF8", "--locale=C", "--wal-segsize=1",
	}
}

// templateDir returns a directory holding an initialised data directory
// ("data") for the given binaries, building it on first use.
//
// initdb takes over a second; copying its result takes a fraction of that.
// The template is kept in the system temporary directory under a name made
// of the server version, the binaries' location and our uid, and is reused
// by later processes (go test runs one per package, often in parallel). It
// is built in a private directory and renamed into place, so other
// processes see either nothing or a complete template. It is about 40 MB and
// can be deleted at any time.
func templateDir(b binaries, cred *syscall.Credential) (string, error) {
	templateMu.Lock()
	defer templateMu.Unlock()

	owner := os.Geteuid()
	if cred != nil {
		owner = int(cred.Uid)
	}
	sum := sha256.Sum256([]byte(b.version + "\x00" + b.initdb + "\x00" + strings.Join(initdbArgs(""), " ")))
	// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" -> "15.18"
	version := "unknown"
	for _, w := range strings.Fields(b.version) {
		if w[0] >= '0' && w[0] <= '9' {
			version = strings.Map(func(r rune) rune {
				if r >= '0' && r <= '9' || r == '.' {
					return r
				}
				return '_'
			}, w)
			break
		}
	}
	name := fmt.Sprintf("authserver-pgtest-%s-%s-uid%d", version, hex.EncodeToString(sum[:4]), os.Geteuid())
	final := filepath.Join(os.TempDir(), name)

	if ok, err := usableTemplate(final, owner); err != nil || ok {
		return final, err
	}

	tmp, err := os.MkdirTemp(os.TempDir(), name+".building-")
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	if err := chownTo(tmp, cred); err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	err = runAs(cred, tmp, b.initdb, initdbArgs(filepath.Join(tmp, "data"))...)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		// Another process won the race; use its template.
		_ = os.RemoveAll(tmp)
		if ok, err2 := usableTemplate(final, owner); ok || err2 != nil {
			return final, err2
		}
		return "", fmt.Errorf("pgtest: installing template: %w", err)
	}
	return final, nil
}

// usableTemplate reports whether dir is a complete template owned by the
// expected user. A template owned by someone else (the temporary directory
// is shared) is an error rather than something to use or delete.
func usableTemplate(dir string, owner int) (bool, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pgtest: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != owner || fi.Mode().Perm()&0o022 != 0 {
		return false, fmt.Errorf("pgtest: %s is not a template directory owned by uid %d; remove it", dir, owner)
	}
	// postgresql.auto.conf is among the last files initdb writes.
	if _, err := os.Stat(filepath.Join(dir, "data", "postgresql.auto.conf")); err != nil {
		return false, fmt.Errorf("pgtest: %s is incomplete; remove it", dir)
	}
	return true, nil
}

// copyTree copies the directory src to dst (which must not exist),
// keeping permission bits (postgres insists on 0700 or 0750 for the data
// directory) and handing everything to cred's user when running as root.
func copyTree(src, dst string, cred *syscall.Credential) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, info.Mode().Perm()); err != nil {
				return err
			}
			if err := os.Chmod(target, info.Mode().Perm()); err != nil { // undo the umask
				return err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(path, target, info.Mode().Perm()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected file type %v at %s", info.Mode().Type(), path)
		}
		return chownTo(target, cred)
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, perm)
}
