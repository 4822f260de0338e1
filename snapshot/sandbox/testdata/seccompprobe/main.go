// Command seccompprobe makes the raw syscalls its arguments describe, each
// "nr[,arg...]" (numbers in Go syntax: 10, 0x10), and prints one line per
// call: the errno it returned, 0 for success. The seccomp tests run it,
// built static, inside the sandbox.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	for _, a := range os.Args[1:] {
		var v [7]uintptr
		for i, p := range strings.Split(a, ",") {
			n, err := strconv.ParseUint(p, 0, 64)
			if err != nil || i >= len(v) {
				fmt.Fprintf(os.Stderr, "bad call %q\n", a)
				os.Exit(2)
			}
			v[i] = uintptr(n)
		}
		_, _, errno := syscall.RawSyscall6(v[0], v[1], v[2], v[3], v[4], v[5], v[6])
		fmt.Println(int(errno))
	}
}
