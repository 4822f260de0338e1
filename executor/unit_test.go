package executor

import (
	"testing"

	"github.com/builderdev/builder/parser"
)

func TestRunHistory(t *testing.T) {
	st := &imageState{}
	st.args = st.args.Set("A", "1").Set("B", "x y")
	st.argDefs = []parser.Var{{K: "A", V: "0"}, {K: "B", V: ""}, {K: "A", V: "1"}}
	got := runHistory([]string{"/bin/sh", "-c", "echo hi"}, st)
	if want := "|2 A=1 B=x y /bin/sh -c echo hi"; got != want {
		t.Errorf("runHistory = %q, want %q", got, want)
	}
}
