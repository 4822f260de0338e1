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
	jobs    chan *listing
	stopped atomic.Bool
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

// aheadQueue bounds the directories queued for the readers; the walk lists
// any beyond it itself.
const aheadQueue = 4096

func newReadahead(fsys FS) *readahead {
	return &readahead{fsys: fsys}
}

// ahead queues the directory p to be listed and returns its listing (nil:
// list it in line).
func (r *readahead) ahead(p string) *listing {
	if _, ok := r.fsys.(DirFS); !ok || runtime.NumCPU() < 2 {
		return nil
	}
	if !r.started {
		r.started = true
		r.jobs = make(chan *listing, aheadQueue)
		for range runtime.NumCPU() {
			r.wg.Go(func() {
				for l := range r.jobs {
					if !r.stopped.Load() && l.taken.CompareAndSwap(false, true) {
						l.read(r.fsys)
					}
				}
			})
		}
	}
	l := &listing{path: p, done: make(chan struct{})}
	select {
	case r.jobs <- l:
		return l
	default:
		return nil
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
	r.stopped.Store(true)
	close(r.jobs)
	r.wg.Wait()
}
