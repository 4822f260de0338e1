package executor

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSpeculates: a COPY makes its layer ahead only where no lookup can
// answer and the step is allowed to run.
func TestSpeculates(t *testing.T) {
	named := &stage{name: "build"}
	cases := []struct {
		name    string
		opts    Options
		cold    bool
		entries int
		want    bool
	}{
		{"cold store", Options{}, true, 10, true},
		{"records in the store", Options{}, false, 10, false},
		{"an imported cache", Options{CacheFrom: []CacheSource{nil}}, true, 10, false},
		{"--no-cache", Options{NoCache: true}, false, 10, true},
		{"--no-cache-filter of the stage", Options{NoCacheFilter: []string{"BUILD"}}, false, 10, true},
		{"--no-cache-filter of another", Options{NoCacheFilter: []string{"test"}}, false, 10, false},
		{"--expect-cached", Options{ExpectCached: true, NoCache: true}, true, 10, false},
		{"hits only", Options{HitsOnly: true}, true, 10, false},
		{"at the entry bound", Options{}, true, speculateMaxEntries, true},
		{"over the entry bound", Options{NoCache: true}, true, speculateMaxEntries + 1, false},
		{"nothing to hash (heredoc, URL, git, stage)", Options{NoCache: true}, true, 0, false},
	}
	for _, tc := range cases {
		bd := &build{opts: tc.opts, coldCache: tc.cold}
		if got := bd.speculates(named, tc.entries); got != tc.want {
			t.Errorf("%s: speculates = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestSpeculation: the step that misses takes the layer made ahead; one
// that hits, or fails first, stops it, waits for it and drops what it made.
func TestSpeculation(t *testing.T) {
	bd := &build{}
	t.Run("taken", func(t *testing.T) {
		want := &produced{newest: 7}
		sp := bd.speculate(context.Background(), func(context.Context) (*produced, error) { return want, nil })
		got, err := sp.result()
		if got != want || err != nil {
			t.Fatalf("result = %v, %v", got, err)
		}
		sp.drop() // after result: nothing to stop
	})
	t.Run("dropped while running", func(t *testing.T) {
		stopped := make(chan error, 1)
		sp := bd.speculate(context.Background(), func(ctx context.Context) (*produced, error) {
			<-ctx.Done()
			stopped <- ctx.Err()
			return nil, ctx.Err()
		})
		done := make(chan struct{})
		go func() { sp.drop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("drop did not return")
		}
		select {
		case err := <-stopped:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("produce saw %v, want context.Canceled", err)
			}
		default:
			t.Error("drop returned before produce ended")
		}
	})
	t.Run("dropped once made", func(t *testing.T) {
		aborted := 0
		sp := bd.speculate(context.Background(), func(context.Context) (*produced, error) {
			return &produced{abort: func() { aborted++ }}, nil
		})
		<-sp.done
		sp.drop()
		sp.drop()
		if aborted != 1 {
			t.Errorf("abort ran %d times, want 1", aborted)
		}
	})
	var none *speculation
	none.drop() // no speculation: safe
}
