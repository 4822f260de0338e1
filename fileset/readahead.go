package fileset

import (
	"io/fs"
	"runtime"
	"sync"
	"sync/atomic"
)

// readahead lists the directories of a walk ahead of it, on one goroutine
// per CPU, so a big build context is read with every core while the walk
// itself stays sequential (its order, and so every cache key, is the same
// as without it). A directory the walk reaches before a reader has taken
// it is listed by the walk itself: the walk never waits for a queue.
//
// Only host directories (Dir) are read ahead: their ReadDir is a plain
// getdents, safe from any goroutine; other trees are listed in line.
type readahead struct {
	fsys    FS
	mu      sync.Mutex
	more    *sync.Cond // signalled on a push and on stop
	stack   []*listing // to be read: the last pushed first
	stopped bool
	wg      sync.WaitGroup
	started bool
}

// listing is one directory's ReadDir, done once by whoever takes it first.
type listing struct {
	path  string
	taken atomic.Bool
	done  chan struct{}
	ents  []fs.DirEntry
	err   error
}

func newReadahead(fsys FS) *readahead {
	return &readahead{fsys: fsys}
}

// ahead returns listings of the directories ps (the subdirectories of
// one directory, in walk order), queued to be read ahead; nil: list them
// in line. The queue is a stack, and ps go on it last first: the readers
// take the directories the walk reaches next, depth first as it goes,
// not the siblings of every directory it passed.
func (r *readahead) ahead(ps []string) []*listing {
	if _, ok := r.fsys.(DirFS); !ok || runtime.NumCPU() < 2 || len(ps) == 0 {
		return nil
	}
	if !r.started {
		r.started = true
		r.more = sync.NewCond(&r.mu)
		for range runtime.NumCPU() {
			r.wg.Go(r.reader)
		}
	}
	ls := make([]*listing, len(ps))
	for i, p := range ps {
		ls[i] = &listing{path: p, done: make(chan struct{})}
	}
	r.mu.Lock()
	for i := len(ls) - 1; i >= 0; i-- {
		r.stack = append(r.stack, ls[i])
	}
	r.mu.Unlock()
	r.more.Broadcast()
	return ls
}

// reader reads the listings on the stack until stop.
func (r *readahead) reader() {
	for {
		r.mu.Lock()
		for len(r.stack) == 0 && !r.stopped {
			r.more.Wait()
		}
		if r.stopped {
			r.mu.Unlock()
			return
		}
		l := r.stack[len(r.stack)-1]
		r.stack[len(r.stack)-1] = nil
		r.stack = r.stack[:len(r.stack)-1]
		r.mu.Unlock()
		if l.taken.CompareAndSwap(false, true) {
			l.read(r.fsys)
		}
	}
}

// list returns the entries of dir, from l when it was queued.
func (r *readahead) list(dir string, l *listing) ([]fs.DirEntry, error) {
	if l == nil {
		return r.fsys.ReadDir(dir)
	}
	if l.taken.CompareAndSwap(false, true) {
		l.read(r.fsys)
	}
	<-l.done
	ents, err := l.ents, l.err
	l.ents = nil // the walk holds them now
	return ents, err
}

func (l *listing) read(fsys FS) {
	l.ents, l.err = fsys.ReadDir(l.path)
	close(l.done)
}

// stop ends the readers once the walk is over (or failed): what is still
// queued is dropped.
func (r *readahead) stop() {
	if !r.started {
		return
	}
	r.mu.Lock()
	r.stopped = true
	r.stack = nil
	r.mu.Unlock()
	r.more.Broadcast()
	r.wg.Wait()
}
