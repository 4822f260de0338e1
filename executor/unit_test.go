package executor

import (
	"testing"
)

func TestRunHistory(t *testing.T) {
	st := &imageState{}
	st.args = st.args.set("A", "1").set("B", "x y")
	st.argDefs = []kv{{"A", "0"}, {"B", ""}, {"A", "1"}}
	got := runHistory([]string{"/bin/sh", "-c", "echo hi"}, st)
	if want := "|2 A=1 B=x y /bin/sh -c echo hi"; got != want {
		t.Errorf("runHistory = %q, want %q", got, want)
	}
}
