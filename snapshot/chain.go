package snapshot

import "github.com/opencontainers/go-digest"

// ChainID is the OCI chain ID of a layer with diffID on top of the chain
// parent ("" for the first layer): the name of its committed snapshot.
func ChainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.FromString(parent.String() + " " + diffID.String())
}
