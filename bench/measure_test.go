package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// gnuTime is GNU time (Debian's package "time"): it reports the peak RSS
// of the command and of the descendants it waited for.
const gnuTime = "/usr/bin/time"

// cmdTimeout bounds one measured command (an apt-get run included).
const cmdTimeout = 30 * time.Minute

// A sample is one measured command: wall time as seen from here (GNU
// time's own exec adds well under a millisecond), CPU and peak RSS as GNU
// time reports them.
type sample struct {
	WallMS   float64 `json:"wall_ms"`
	UserMS   float64 `json:"user_ms"`
	SysMS    float64 `json:"sys_ms"`
	MaxRSSKB int64   `json:"max_rss_kb"`
}

// measure runs name args under GNU time in dir (when not empty) and returns
// the sample and the command's combined output.
func measure(dir, name string, args ...string) (sample, string, error) {
	if interrupted.Load() {
		return sample{}, "", errors.New("interrupted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	f, err := os.CreateTemp("", "builder-bench-time-")
	if err != nil {
		return sample{}, "", err
	}
	f.Close()
	defer os.Remove(f.Name())
	cmd := command(ctx, dir, gnuTime, append([]string{"-o", f.Name(), "-f", "%U %S %M", name}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = runCmd(cmd)
	wall := time.Since(start)
	if err != nil {
		return sample{}, out.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(out.String(), 40))
	}
	s := sample{WallMS: ms(wall)}
	report, err := os.ReadFile(f.Name())
	if err != nil {
		return sample{}, out.String(), err
	}
	if err := parseTime(string(report), &s); err != nil {
		return sample{}, out.String(), err
	}
	return s, out.String(), nil
}

// command is exec.CommandContext in its own process group, so that a
// timeout kills the whole tree (GNU time, the tool, the tool's children),
// not just the first process while the others hold the output pipe. Being
// in their own group, the commands miss a terminal's Ctrl-C: TestMain
// kills the groups still running (killGroups) when the harness is
// interrupted.
func command(ctx context.Context, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	ownGroup(cmd)
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// groups holds the process group ids of the commands running now.
var groups sync.Map

// interrupted is set by TestMain on SIGINT/SIGTERM: measure refuses to
// start anything more.
var interrupted atomic.Bool

// runCmd runs cmd with its group registered for killGroups.
func runCmd(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	groups.Store(pid, true)
	defer groups.Delete(pid)
	return cmd.Wait()
}

// killGroups kills every running command's process group.
func killGroups() {
	groups.Range(func(pid, _ any) bool {
		_ = killGroup(pid.(int))
		return true
	})
}

// parseTime reads the "%U %S %M" line GNU time wrote last.
func parseTime(report string, s *sample) error {
	lines := strings.Split(strings.TrimSpace(report), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) != 3 {
		return fmt.Errorf("parse GNU time output %q", report)
	}
	user, err1 := strconv.ParseFloat(f[0], 64)
	sys, err2 := strconv.ParseFloat(f[1], 64)
	rss, err3 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return fmt.Errorf("parse GNU time output %q", report)
	}
	s.UserMS, s.SysMS, s.MaxRSSKB = user*1000, sys*1000, rss
	return nil
}

// run runs a setup command (untimed) and returns its combined output.
func run(dir, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := command(ctx, dir, name, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := runCmd(cmd)
	out := buf.Bytes()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(string(out), 40))
	}
	return string(out), nil
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// medianOf is the median of the values f picks from samples (the mean of
// the two middle ones for an even count); NaN-free: 0 for none.
func medianOf(samples []sample, f func(sample) float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	v := make([]float64, len(samples))
	for i, s := range samples {
		v[i] = f(s)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func wallOf(s sample) float64 { return s.WallMS }
func rssOf(s sample) float64  { return float64(s.MaxRSSKB) }
