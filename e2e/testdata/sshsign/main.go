// Command sshsign is a test helper run inside a RUN of the e2e tests: it
// asks the agent at $SSH_AUTH_SOCK for its first key and has the agent sign
// the challenge argv[1] (SSH_AGENTC_REQUEST_IDENTITIES, SSH_AGENTC_SIGN_REQUEST),
// then prints the key blob and the signature blob, base64, on one line.
// It is built statically by the test and copied into the image.
package main

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		fail(fmt.Errorf("usage: sshsign CHALLENGE"))
	}
	c, err := net.Dial("unix", os.Getenv("SSH_AUTH_SOCK"))
	if err != nil {
		fail(err)
	}
	defer c.Close()
	msg := call(c, []byte{11})
	if msg[0] != 12 || binary.BigEndian.Uint32(msg[1:]) == 0 {
		fail(fmt.Errorf("no identities (answer %d)", msg[0]))
	}
	key, _ := str(msg[5:])
	req := append([]byte{13}, wire(key)...)
	req = append(req, wire([]byte(os.Args[1]))...)
	req = append(req, 0, 0, 0, 0) // flags
	msg = call(c, req)
	if msg[0] != 14 {
		fail(fmt.Errorf("sign refused (answer %d)", msg[0]))
	}
	sig, _ := str(msg[1:])
	enc := base64.StdEncoding.EncodeToString
	fmt.Println(enc(key), enc(sig))
}

// call sends one agent message and reads the answer.
func call(c net.Conn, body []byte) []byte {
	if _, err := c.Write(wire(body)); err != nil {
		fail(err)
	}
	var n uint32
	if err := binary.Read(c, binary.BigEndian, &n); err != nil {
		fail(err)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(c, msg); err != nil || n == 0 {
		fail(fmt.Errorf("read answer: %v", err))
	}
	return msg
}

func wire(b []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...) }

func str(b []byte) ([]byte, []byte) {
	n := binary.BigEndian.Uint32(b)
	return b[4 : 4+n], b[4+n:]
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sshsign:", err)
	os.Exit(1)
}
