package cache

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The build log, <root>/history/builds.jsonl, is what `builder history`
// shows: one JSON line a build, appended when the build ends, the last
// MaxBuilds kept. Like the per-target history it is a hint: an append is
// one write(2) with O_APPEND (concurrent builds never interleave their
// lines), a torn line from a crash is skipped when read, and the rewrite
// that drops old builds (temp file, rename) may lose a build that ends at
// that very moment.

// MaxBuilds is how many builds the log keeps.
const MaxBuilds = 50

// maxLogText bounds each text of a logged build (names, errors, reasons).
const maxLogText = 500

// LoggedBuild is one build of the log.
type LoggedBuild struct {
	Start      time.Time     `json:"start"`
	Duration   time.Duration `json:"duration"`
	Context    string        `json:"context"`
	Dockerfile string        `json:"dockerfile"`
	Target     string        `json:"target,omitempty"`
	Tags       []string      `json:"tags,omitempty"`
	Manifest   string        `json:"manifest,omitempty"` // digest of the image built
	Error      string        `json:"error,omitempty"`    // why it failed
	Canceled   bool          `json:"canceled,omitempty"`
	Steps      []LoggedStep  `json:"steps"`
}

// LoggedStep is one step of a logged build.
type LoggedStep struct {
	ID       int           `json:"id"`
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration"`
	Cached   bool          `json:"cached,omitempty"`
	From     string        `json:"from,omitempty"` // the imported cache of a hit
	Miss     string        `json:"miss,omitempty"` // why it missed, when known
	Error    string        `json:"error,omitempty"`
}

func (s *Store) buildLogPath() string { return filepath.Join(s.root, "history", "builds.jsonl") }

// AppendBuild adds b to the build log, and drops the oldest builds once
// it holds twice MaxBuilds (counted when its size says it may: builds of
// very different lengths can leave it a little longer).
func (s *Store) AppendBuild(b LoggedBuild) error {
	b.Error = clip(b.Error)
	for i := range b.Steps {
		st := &b.Steps[i]
		st.Name, st.Miss, st.Error = clip(st.Name), clip(st.Miss), clip(st.Error)
	}
	line, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("log build: %w", err)
	}
	p := s.buildLogPath()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("log build: %w", err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("log build: %w", err)
	}
	line = append(line, '\n')
	st, serr := f.Stat()
	if serr == nil && st.Size() > 0 {
		// A line torn by a crash ends here: start on a line of our own.
		last := make([]byte, 1)
		if rf, rerr := os.Open(p); rerr == nil {
			if _, rerr := rf.ReadAt(last, st.Size()-1); rerr == nil && last[0] != '\n' {
				line = append([]byte{'\n'}, line...)
			}
			rf.Close()
		}
	}
	_, err = f.Write(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("log build: %w", err)
	}
	// Most builds only append: the log is read (to count its builds) only
	// once it is as long as 2*MaxBuilds lines of this one's length, or of
	// 200 bytes (a logged build is longer). A steady log of builds like
	// this one is read once every MaxBuilds builds, not at every build.
	if serr == nil && st.Size()+int64(len(line)) < 2*MaxBuilds*int64(max(len(line), 200)) {
		return nil
	}
	raw, err := os.ReadFile(p)
	if err != nil || bytes.Count(raw, []byte("\n")) <= 2*MaxBuilds {
		return nil
	}
	lines, err := s.logLines()
	if err != nil {
		return err
	}
	keep := bytes.Join(lines[max(0, len(lines)-MaxBuilds):], []byte("\n"))
	if err := s.writeFile(p, append(keep, '\n'), false); err != nil {
		return fmt.Errorf("log build: %w", err)
	}
	return nil
}

// Builds returns the logged builds, oldest first (at most MaxBuilds).
func (s *Store) Builds() ([]LoggedBuild, error) {
	lines, err := s.logLines()
	if err != nil {
		return nil, err
	}
	var out []LoggedBuild
	for _, l := range lines {
		var b LoggedBuild
		if json.Unmarshal(l, &b) == nil {
			out = append(out, b)
		}
	}
	if len(out) > MaxBuilds {
		out = out[len(out)-MaxBuilds:]
	}
	return out, nil
}

// logLines reads the log's lines that are whole JSON objects.
func (s *Store) logLines() ([][]byte, error) {
	f, err := os.Open(s.buildLogPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read build log: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, maxHistory)
	var lines [][]byte
	for sc.Scan() {
		if l := sc.Bytes(); json.Valid(l) {
			lines = append(lines, bytes.Clone(l))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read build log: %w", err)
	}
	return lines, nil
}

func clip(s string) string {
	if len(s) <= maxLogText {
		return s
	}
	return s[:maxLogText] + "..."
}
