//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// progressDir holds the golden output of each --progress mode.
const progressDir = "testdata/progress"

var (
	progressTimes   = regexp.MustCompile(`\d+\.\d+s?\b`)
	progressDigests = regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	progressJSONNum = regexp.MustCompile(`"(time|duration)":[0-9.e-]+`)
)

// maskProgress hides what changes from run to run: times (every digit
// becomes 0, so columns stay aligned) and digests.
func maskProgress(s string) string {
	s = progressJSONNum.ReplaceAllString(s, `"$1":0`)
	s = progressTimes.ReplaceAllStringFunc(s, func(m string) string {
		return regexp.MustCompile(`\d`).ReplaceAllString(m, "0")
	})
	return progressDigests.ReplaceAllString(s, "sha256:<digest>")
}

// checkProgressGolden compares got with testdata/progress/name (-update rewrites it).
func checkProgressGolden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join(progressDir, name)
	if *update {
		if err := os.MkdirAll(progressDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./e2e -run %s -update)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("%s differs (run go test ./e2e -run %s -update to accept)\n--- want\n%s\n--- got\n%s", p, t.Name(), want, got)
	}
}

// progressDockerfile is the fixed build of the progress goldens: FROM, a
// metadata step, a RUN with output (a hit on the rebuild) and a COPY (a
// miss on the rebuild).
const progressDockerfile = "FROM busybox\nENV A=1\nRUN printf 'one\\ntwo\\n'\nCOPY a.txt /a.txt\n"

// TestProgressModes builds the same Dockerfile twice (cold, then with
// a.txt changed) in each non-interactive mode and compares what it
// prints with the golden text.
// The quiet golden's rebuild uses -q (the image ID on stdout).
func TestProgressModes(t *testing.T) {
	for _, mode := range []struct{ name, file, rebuild string }{
		{"plain", "plain.golden", "--progress=plain"}, {"rawjson", "rawjson.golden", "--progress=rawjson"},
		{"quiet", "quiet.golden", "-q"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t)
			dir := writeContext(t, map[string]string{"Dockerfile": progressDockerfile, "a.txt": "a\n"})
			var b strings.Builder
			for i, change := range []string{"", "b\n"} {
				flag := "--progress=" + mode.name
				if change != "" {
					cacheWrite(t, dir, "a.txt", change)
					flag = mode.rebuild
				}
				r := e.run("build", flag, "--source-date-epoch", "0", "-t", "progress:"+mode.name, dir)
				if r.code != 0 {
					t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
				}
				b.WriteString([]string{"== cold build\n", "== a.txt changed\n"}[i])
				b.WriteString("-- stdout\n" + r.stdout + "-- stderr\n" + r.stderr)
			}
			checkProgressGolden(t, mode.file, maskProgress(b.String()))
		})
	}
}

// tmuxPane is a terminal: a detached tmux server of its own running a
// shell, of the given size.
type tmuxPane struct {
	t    *testing.T
	sock string
}

func newTmuxPane(t *testing.T, cols, rows int) *tmuxPane {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (Debian package tmux)")
	}
	p := &tmuxPane{t: t, sock: filepath.Join(t.TempDir(), "tmux.sock")}
	p.tmux("-f", "/dev/null", "new-session", "-d", "-x", strconv.Itoa(cols), "-y", strconv.Itoa(rows), "-s", "e2e",
		"env", "-i", "PATH="+os.Getenv("PATH"), "TERM=tmux", "PS1=$ ", "sh")
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", p.sock, "kill-server").Run() })
	return p
}

func (p *tmuxPane) tmux(args ...string) string {
	p.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", p.sock}, args...)...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// run types a command line into the shell.
func (p *tmuxPane) run(line string) { p.tmux("send-keys", "-t", "e2e", line, "Enter") }

// script writes a shell script in the shell's directory (short command
// lines: no temp dir on screen) that runs body and prints its exit code,
// and runs it after clearing the screen. bash: on Ctrl-C it waits for
// the command and goes on when that one exits rather than dies.
func (p *tmuxPane) script(dir, name, body string) {
	p.t.Helper()
	data := body + "\necho " + name + " EXIT=$?\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o755); err != nil {
		p.t.Fatal(err)
	}
	p.run("clear; bash " + name)
}

// exited waits until the script name has ended and the shell shows its
// prompt again (the prompt comes a moment after the exit line: a screen
// taken between the two lacked it), and returns the screen.
func (p *tmuxPane) exited(name string) string {
	p.t.Helper()
	done := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` EXIT=\d+\n\$`)
	return p.waitFor(name+" to end", done.MatchString)
}

// screen is what the terminal shows now (trailing spaces trimmed).
func (p *tmuxPane) screen() string { return p.tmux("capture-pane", "-p", "-t", "e2e") }

// waitFor polls the screen until ok accepts it (10 s at most).
func (p *tmuxPane) waitFor(what string, ok func(string) bool) string {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := p.screen()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("terminal never showed %s:\n%s", what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenLines is the screen without the blank rows at its end.
func screenLines(s string) string { return strings.TrimRight(s, "\n ") + "\n" }

// TestProgressTTY runs builds in a real terminal (tmux) with the default
// --progress auto, and compares what the terminal shows with the goldens:
// the live view while two stages run in parallel (each RUN with its timer
// and its last output lines), the same view after the terminal got
// narrower, and the screen after a cold build and a rebuild.
func TestProgressTTY(t *testing.T) {
	e := newEnv(t)
	cmd := e.bin + " --root " + e.root + " build "
	par := writeContext(t, map[string]string{"Dockerfile": "FROM busybox AS a\n" +
		"RUN for i in 1 2 3 4 5 6 7 8; do echo a-line-$i; done; sleep 6\n" +
		"FROM busybox AS b\nRUN echo b-start; sleep 6\n" +
		"FROM busybox\nCOPY --from=a /bin/sh /a\nCOPY --from=b /bin/sh /b\n"})
	p := newTmuxPane(t, 100, 30)
	sdir := t.TempDir()
	p.run("cd " + sdir)
	p.script(sdir, "par.sh", cmd+par)
	live := p.waitFor("both RUNs' output", func(s string) bool {
		return strings.Contains(s, "> a-line-8") && strings.Contains(s, "> b-start")
	})
	_, area, ok := strings.Cut(live, "[+] Building")
	if !ok {
		t.Fatalf("no live area:\n%s", live)
	}
	got := "[+] Building" + screenLines(area)
	// Narrower: every line is cut to the new width, none wraps.
	p.tmux("resize-window", "-t", "e2e", "-x", "60")
	// Until the next frame the screen shows the last one rewrapped by
	// tmux; the new one cuts the first RUN's name to fit.
	cutLine := regexp.MustCompile(`(?m)^=> \[a 2/2\] RUN for .*\.\.\. +\d+\.\ds$`)
	narrow := p.waitFor("the live view at 60 columns", func(s string) bool {
		return strings.Contains(s, "[+] Building") && cutLine.MatchString(s)
	})
	_, area, _ = strings.Cut(narrow, "[+] Building")
	got += "== at 60 columns\n[+] Building" + screenLines(area)
	for _, l := range strings.Split(narrow, "\n") {
		if utf8.RuneCountInString(l) > 59 {
			t.Errorf("line wider than the terminal: %q", l)
		}
	}
	if n := strings.Count(narrow, "[+] Building"); n != 1 {
		t.Errorf("%d live areas on screen, want 1:\n%s", n, narrow)
	}
	done := p.exited("par.sh")
	if !strings.Contains(done, "par.sh EXIT=0") || strings.Contains(done, "[+] Building") {
		t.Errorf("after the build: want EXIT=0 and no live area:\n%s", done)
	}
	checkProgressGolden(t, "tty-live.golden", maskProgress(got))

	// A linear build, cold then with a file changed: the screen a user
	// sees once it is done.
	p.tmux("resize-window", "-t", "e2e", "-x", "90")
	dir := writeContext(t, map[string]string{"Dockerfile": progressDockerfile, "a.txt": "a\n"})
	p.script(sdir, "cold.sh", cmd+"--source-date-epoch 0 -t tty:v1 "+dir)
	first := p.exited("cold.sh")
	cacheWrite(t, dir, "a.txt", "b\n")
	p.script(sdir, "changed.sh", cmd+"--source-date-epoch 0 -t tty:v1 "+dir)
	second := p.exited("changed.sh")
	checkProgressGolden(t, "tty-final.golden", maskProgress("== cold build\n"+screenLines(first)+"== a.txt changed\n"+screenLines(second)))

	// Ctrl-C while a RUN runs: the live view ends with the step CANCELED,
	// then the error; exit 130.
	long := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo started; sleep 60\n"})
	p.script(sdir, "int.sh", cmd+long)
	p.waitFor("the RUN's output", func(s string) bool { return strings.Contains(s, "> started") })
	p.tmux("send-keys", "-t", "e2e", "C-c")
	got = maskProgress(screenLines(p.exited("int.sh")))
	want := regexp.MustCompile(`(?m)^=> \[stage-0 2/2\] RUN echo started; sleep 60 +CANCELED 0\.0s\n` +
		`error: Dockerfile:2: RUN echo started; sleep 60: context canceled\nint.sh EXIT=130\n`)
	if !want.MatchString(got) || strings.Contains(got, "[+] Building") {
		t.Errorf("after Ctrl-C, want the step canceled, the error, exit 130 and no live area:\n%s", got)
	}
}
