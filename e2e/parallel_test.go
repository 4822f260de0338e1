package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestIndependentStagesRunInParallel proves the overlap without timing:
// the RUN of each of two independent stages connects to a listener here,
// and the listener answers "parallel" only once both are connected at the
// same time (else "sequential" to the first, after a while).
func TestIndependentStagesRunInParallel(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		first, err := ln.Accept()
		if err != nil {
			return
		}
		defer first.Close()
		conns := make(chan net.Conn, 1)
		go func() {
			if c, err := ln.Accept(); err == nil {
				conns <- c
			}
		}()
		select {
		case second := <-conns:
			defer second.Close()
			fmt.Fprintln(first, "parallel")
			fmt.Fprintln(second, "parallel")
		case <-time.After(20 * time.Second):
			fmt.Fprintln(first, "sequential")
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	run := fmt.Sprintf("RUN nc 127.0.0.1 %d > /out.txt; cat /out.txt\n", port)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox AS a\n" + run +
		"FROM busybox AS b\nRUN true\n" + run +
		"FROM busybox\nCOPY --from=a /out.txt /a.txt\nCOPY --from=b /out.txt /b.txt\n"})
	out := filepath.Join(t.TempDir(), "rootfs")
	e.mustRun("build", "--no-cache", ctx, "-o", "type=local,dest="+out)
	for _, f := range []string{"a.txt", "b.txt"} {
		fh, err := os.Open(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(fh).ReadString('\n')
		fh.Close()
		if line != "parallel\n" {
			t.Errorf("%s = %q: the independent stages did not run at the same time", f, line)
		}
	}
}
