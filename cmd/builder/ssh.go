package main

import (
	"os"

	"github.com/builderdev/builder/client"
)

// parseSSH reads --ssh values as buildx does: "default" or "ID" alone
// forward $SSH_AUTH_SOCK; "ID=PATH[,PATH]" names an agent socket or
// private key files.
func parseSSH(in []string) ([]client.SSHSpec, error) {
	var out []client.SSHSpec
	for _, s := range in {
		sp, err := client.ParseSSHSpec(s)
		if err != nil {
			return nil, err
		}
		if len(sp.Paths) == 0 {
			sock := os.Getenv("SSH_AUTH_SOCK")
			if sock == "" {
				return nil, usagef("--ssh %s: SSH_AUTH_SOCK is not set (start an agent, or give ID=KEYFILE)", s)
			}
			sp.Paths = []string{sock}
		}
		out = append(out, sp)
	}
	return out, nil
}
