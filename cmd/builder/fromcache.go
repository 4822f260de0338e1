package main

import (
	"io"
	"os"
	"strings"
)

// hitsOnly is set while a user's build tries the cache alone (fromCache):
// runBuild passes it to the engine.
var hitsOnly bool

// fromCacheCandidate reports whether args are a build worth trying from the
// cache alone, in this process, before the re-exec into a user namespace:
// no output that applies layers, no second build, no stdin to consume.
func fromCacheCandidate(args []string) bool {
	sub := ""
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--root" || a == "--cpuprofile" {
			i++
			continue
		}
		if strings.HasPrefix(a, "-") {
			continue
		}
		sub = a
		break
	}
	if sub != "build" {
		return false
	}
	rest := args[i+1:]
	for j, a := range rest {
		stdinFile := (a == "-f" || a == "--file") && j+1 < len(rest) && rest[j+1] == "-"
		switch {
		case a == "-o", a == "--output", strings.HasPrefix(a, "--output="), strings.HasPrefix(a, "-o"),
			a == "--check-reproducible", a == "-", a == "--file=-", stdinFile:
			return false
		}
	}
	return true
}

// fromCache runs a user's build with every step from the cache, as the
// user, with no user namespace: a fully cached build needs no id but the
// user's (records, config, manifest, index), and the re-exec into the
// namespace (two more execs, newuidmap, newgidmap) costs more than such a
// build. Its output is held; ok is false (and the output dropped) when it
// did not succeed: the caller then builds for real in the namespace, where
// any real error is met again and reported.
func fromCache(args []string) (code int, ok bool) {
	out, err := os.CreateTemp("", "builder-out-")
	if err != nil {
		return 0, false
	}
	defer os.Remove(out.Name())
	defer out.Close()
	errs, err := os.CreateTemp("", "builder-err-")
	if err != nil {
		return 0, false
	}
	defer os.Remove(errs.Name())
	defer errs.Close()
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr, hitsOnly = out, errs, true
	code = run(args)
	os.Stdout, os.Stderr, hitsOnly = stdout, stderr, false
	if code != exitOK && code != exitInterrupted {
		return 0, false
	}
	for _, c := range [][2]*os.File{{out, stdout}, {errs, stderr}} {
		if _, err := c[0].Seek(0, io.SeekStart); err == nil {
			_, _ = io.Copy(c[1], c[0])
		}
	}
	return code, true
}
