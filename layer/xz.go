package layer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
)

// newXzReader decompresses xz through the xz(1) tool, as Docker does: the
// module has no xz decoder (github.com/ulikunitz/xz is not in go.mod).
// xz layers are rare (old ADD archives); everything else is in-process.
func newXzReader(r io.Reader) (io.ReadCloser, error) {
	cmd := exec.Command("xz", "--decompress", "--stdout", "--quiet")
	cmd.Stdin = r
	x := &xzReader{cmd: cmd}
	cmd.Stderr = &x.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("open xz stream: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("open xz stream: %w", err)
	}
	x.out = out
	return x, nil
}

type xzReader struct {
	cmd    *exec.Cmd
	out    io.ReadCloser
	stderr bytes.Buffer
	waited bool
	err    error
}

func (x *xzReader) Read(p []byte) (int, error) {
	if x.waited {
		return 0, x.err
	}
	n, err := x.out.Read(p)
	if errors.Is(err, io.EOF) {
		x.waited = true
		x.err = io.EOF
		if werr := x.cmd.Wait(); werr != nil {
			x.err = fmt.Errorf("decompress xz: %w: %s", werr, bytes.TrimSpace(x.stderr.Bytes()))
		}
		return n, x.err
	}
	return n, err
}

func (x *xzReader) Close() error {
	if x.waited {
		return nil
	}
	x.waited = true
	x.err = errors.New("read xz stream: closed")
	_ = x.cmd.Process.Kill()
	_ = x.cmd.Wait()
	return nil
}
