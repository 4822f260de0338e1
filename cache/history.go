package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// maxHistory bounds one history file (a COPY of 100,000 files is ~5 MB).
const maxHistory = 64 << 20

// History returns what the engine last saved under id (nil, nil when
// nothing was): a record of an earlier build of one Dockerfile and target,
// read to explain why a step misses. Its content is the engine's.
func (s *Store) History(id string) ([]byte, error) {
	b, err := os.ReadFile(s.historyPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read build history: %w", err)
	}
	if len(b) > maxHistory {
		return nil, nil
	}
	return b, nil
}

// SaveHistory replaces the history saved under id. It is a hint for
// messages: written without fsync, and a lost one only loses explanations.
func (s *Store) SaveHistory(id string, data []byte) error {
	p := s.historyPath(id)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("save build history: %w", err)
	}
	if err := s.writeFile(p, data, false); err != nil {
		return fmt.Errorf("save build history: %w", err)
	}
	return nil
}

func (s *Store) historyPath(id string) string {
	sum := sha256.Sum256([]byte(id))
	return filepath.Join(s.root, "history", hex.EncodeToString(sum[:16])+".json")
}

// saveFiles keeps the file sums of a COPY step's key (a hint, like the
// history).
func (s *Store) saveFiles(key digest.Digest, files map[string]string) error {
	if key.Validate() != nil {
		return nil
	}
	data, err := json.Marshal(files)
	if err != nil {
		return err
	}
	p := filepath.Join(s.root, "history", "files", key.Encoded()+".json")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("save file sums: %w", err)
	}
	return s.writeFile(p, data, false)
}

// files reads the file sums saved for key (nil: none).
func (s *Store) files(key digest.Digest) map[string]string {
	if key.Validate() != nil {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(s.root, "history", "files", key.Encoded()+".json"))
	if err != nil || len(data) > maxHistory {
		return nil
	}
	var m map[string]string
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	return m
}
