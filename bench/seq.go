package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/authserver-dev/authserver/internal/servertest"
)

// seqResult is what the scenarios seq and preload take from bench/seqbench
// (run as its own process, with its own throwaway PostgreSQL, fsync on):
// the sequence store alone, without HTTP, so that its figures sit in this
// report beside the end-to-end ones.
type seqResult struct {
	// GroupCommit is seqbench's a/b: group commit over many users against
	// one statement per call; HotUser its c/d, one hot user.
	GroupCommit float64       `json:"group_commit_ratio"`
	HotUser     float64       `json:"hot_user_ratio"`
	P99         time.Duration `json:"group_commit_p99_ns"` // scenario a's
	// PreloadRows and BigTable: seqbench -preload's a/a0, group commit on a
	// table of that many more rows against one holding only the measured
	// users' rows (median of its alternating rounds).
	PreloadRows int64           `json:"preload_rows,omitempty"`
	BigTable    float64         `json:"big_table_ratio,omitempty"`
	Seqbench    json.RawMessage `json:"seqbench"` // its whole -json report
}

// seqbenchReport is the part of seqbench -json this report uses.
type seqbenchReport struct {
	Scenarios []struct {
		Name string        `json:"name"`
		P99  time.Duration `json:"p99_ns"`
	} `json:"scenarios"`
	Ratios map[string]float64 `json:"ratios"`
}

// runSeqbench builds and runs bench/seqbench with -json and the given
// flags (plus -d and -c of this run), and returns its figures.
func runSeqbench(ctx context.Context, e *env, o options, stderr io.Writer, flags ...string) (*seqResult, error) {
	if e.seqbench == "" {
		bin := filepath.Join(e.dir, "bin")
		fmt.Fprintf(stderr, "bench: go build -o %s ./bench/seqbench\n", bin)
		if err := servertest.BuildInto(ctx, bin, "./bench/seqbench"); err != nil {
			return nil, err
		}
		e.seqbench = filepath.Join(bin, "seqbench")
	}
	args := append([]string{"-json", "-d", o.Duration.String(), "-c", strconv.Itoa(o.Conns)}, flags...)
	if o.databaseURL != "" {
		args = append(args, "-db", o.databaseURL)
	}
	fmt.Fprintf(stderr, "bench: seqbench %v ...\n", args)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, e.seqbench, args...)
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("seqbench: %w", err)
	}
	var rep seqbenchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return nil, fmt.Errorf("seqbench output: %w", err)
	}
	res := &seqResult{GroupCommit: rep.Ratios["a/b"], HotUser: rep.Ratios["c/d"], BigTable: rep.Ratios["a/a0"], Seqbench: out.Bytes()}
	if len(rep.Scenarios) > 0 {
		res.P99 = rep.Scenarios[0].P99
	}
	return res, nil
}

// seqTargets are issue 16's targets for the sequence store alone.
func seqTargets(r *seqResult, add func(id, target, measured string, met bool)) {
	if r.PreloadRows > 0 {
		add("preload", fmt.Sprintf("group commit, %d more rows, within 20%% of a small table", r.PreloadRows),
			fmt.Sprintf("%.2fx", r.BigTable), r.BigTable >= 0.8)
		return
	}
	add("seq", "group commit >= 5x one statement per call (many users)", fmt.Sprintf("%.1fx", r.GroupCommit), r.GroupCommit >= 5)
	add("seq", "group commit p99 < 20 ms (many users)", fmtDur(r.P99), r.P99 < 20*time.Millisecond)
	add("seq", "group commit >= 10x one statement per call (hot user)", fmt.Sprintf("%.1fx", r.HotUser), r.HotUser >= 10)
}

// printSeq prints the seq and preload figures.
func printSeq(w io.Writer, rep report) {
	if r := rep.Seq; r != nil {
		fmt.Fprintf(w, "\nseq (bench/seqbench, the sequence store alone, Postgres fsync on): group commit %.1fx one statement per call over many users (p99 %s), %.1fx on one hot user\n",
			r.GroupCommit, fmtDur(r.P99), r.HotUser)
	}
	if r := rep.Preload; r != nil {
		fmt.Fprintf(w, "\npreload (bench/seqbench -preload %d): group commit on the big table %.2fx the small one (median of its rounds)\n",
			r.PreloadRows, r.BigTable)
	}
}
