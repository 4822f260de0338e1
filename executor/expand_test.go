package executor

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/parser"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// frontEnd runs the part of a build that needs no I/O over a Dockerfile:
// parse, global ARGs, the plan, and for every stage the expansion of each
// instruction with ARG and ENV taking effect, as dispatch does them.
func frontEnd(dockerfile []byte) error {
	df, err := parser.Parse(bytes.NewReader(dockerfile), "Dockerfile")
	if err != nil {
		return err
	}
	bd := &build{df: df, file: "Dockerfile", usedArgs: map[string]bool{}}
	if err := bd.resolveGlobalArgs(); err != nil {
		return err
	}
	if _, err := bd.plan(); err != nil {
		return err
	}
	for _, s := range df.Stages {
		st := &imageState{}
		for _, cmd := range s.Commands {
			if _, err := bd.expandCmd(st, cmd); err != nil {
				return bd.errAt(cmd, err)
			}
			switch c := cmd.(type) {
			case *instructions.ArgCommand:
				if err := bd.arg(st, c); err != nil {
					return bd.errAt(cmd, err)
				}
			case *instructions.EnvCommand:
				for _, e := range c.Env {
					st.img.Config.Env = parser.SetEnv(st.img.Config.Env, e.Key, e.Value)
					delete(st.argWins, e.Key)
				}
			}
		}
	}
	return nil
}

// doubling is the ARG chain of issue 17: a0=x, then n lines aN=${aN-1}${aN-1}.
func doubling(prefix string, n int, suffix string) string {
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteString("ARG a0=x\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "ARG a%d=${a%d}${a%d}\n", i, i-1, i-1)
	}
	b.WriteString(suffix)
	return b.String()
}

// envLines is n lines ENV eI=value.
func envLines(n int, value string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "ENV e%d=%s\n", i, value)
	}
	return b.String()
}

func TestExpansionBounds(t *testing.T) {
	big := strings.Repeat("y", 4096)
	list := strings.Repeat("item,", 1000)
	cases := []struct {
		name, dockerfile string
		line             int // the line the error names; 0 = no error
	}{
		// a20 is 1 MiB, a21 would be 2 MiB: line 23 (ARG a0 is line 2).
		{"doubling in a stage", doubling("FROM scratch\n", 40, ""), 23},
		{"doubling of global ARGs", doubling("", 40, "FROM scratch\n"), 22},
		{"doubling through ENV", "FROM scratch\nENV a0=x\n" + strings.ReplaceAll(doubling("", 30, "")[len("ARG a0=x\n"):], "ARG", "ENV"), 23},
		{"up to 1 MiB is fine", doubling("FROM scratch\n", 20, "LABEL l=${a20}\n"), 0},
		{"many copies in one word", doubling("FROM scratch\n", 20, "LABEL l=${a19}${a19}${a19}\n"), 23},
		{"many words in one instruction", doubling("FROM scratch\n", 20, "LABEL "+strings.Repeat("l=${a20} ", 9)+"\n"), 23},
		{"FROM of a long word", doubling("", 20, "FROM ${a20}${a20}${a20}\n"), 22},
		{"replace all, squared", "FROM scratch\nARG a=" + big + "\nARG b=${a//?/${a}}\n", 3},
		{"replace all, a literal replacement", "FROM scratch\nARG a=" + big + "\nARG b=${a//?/" + big + "}\n", 3},
		{"replace all on a list", "FROM scratch\nARG l=" + list + "\nENV L=${l//,/_}\nLABEL x=${l/item/thing}\n", 0},
		// a0..a20 take 2 MiB, then each ENV one more: the 14th crosses 16 MiB.
		{"parser.Vars of many 1 MiB values", doubling("FROM scratch\n", 20, envLines(40, "${a20}")), 36},
		{"long literal heredoc", "FROM scratch\nCOPY <<EOF /f\n" + strings.Repeat("zzzzzzzzzz\n", 300000) + "EOF\n", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			err := frontEnd([]byte(c.dockerfile))
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%v: %v, %d MiB allocated", took, err, alloc>>20)
			if c.line == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, parser.ErrExpansion) {
				t.Fatalf("err = %v, want an expansion bound", err)
			}
			if want := fmt.Sprintf("Dockerfile:%d: ", c.line); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
			// Bounded work, measured as memory: a time limit fails on a busy
			// machine or under -race (e2e's TestExpansionBomb times the binary).
			if alloc > 512<<20 {
				t.Errorf("%d MiB allocated, want under 512 MiB", alloc>>20)
			}
		})
	}
}
