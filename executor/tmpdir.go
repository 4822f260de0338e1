package executor

import (
	"os"
	"sync"
)

// lazyDir is a temp dir made on first use: a fully cached build makes
// none (a mkdir and an rmdir were a tenth of its time).
type lazyDir struct {
	make func() (string, error)
	mu   sync.Mutex
	dir  string
}

// get returns the dir, making it the first time.
func (l *lazyDir) get() (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dir == "" {
		d, err := l.make()
		if err != nil {
			return "", err
		}
		l.dir = d
	}
	return l.dir, nil
}

// mkdirTemp makes a new dir in it.
func (l *lazyDir) mkdirTemp(pattern string) (string, error) {
	d, err := l.get()
	if err != nil {
		return "", err
	}
	return os.MkdirTemp(d, pattern)
}

// remove deletes the dir and everything in it, if it was made.
func (l *lazyDir) remove() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dir != "" {
		_ = os.RemoveAll(l.dir)
	}
}
