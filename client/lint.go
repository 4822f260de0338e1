package client

import (
	"context"

	"github.com/builderdev/builder/executor"
)

// CheckWarning is a build check's warning: a BuildKit lint rule that an
// instruction breaks (Lint events carry one).
type CheckWarning = executor.CheckWarning

// Lint is the progress event of a build check's warning.
const Lint = executor.Lint

// Lint runs the build checks of opts' Dockerfile without building
// (`build --check`): every stage is checked (the target's, with Target),
// with its base image resolved (pulled when needed, under the shared
// lock); nothing is built, tagged or exported. The warnings come back
// with the error that stopped the checks, if any (check error=true with
// warnings, a base image that cannot be resolved, a Dockerfile that does
// not parse).
func (c *Client) Lint(ctx context.Context, opts BuildOptions) ([]CheckWarning, error) {
	unlock, err := c.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	eopts := opts.Options
	eopts.Check = true
	res, err := executor.Build(ctx, c.stores(), eopts)
	if res == nil {
		return nil, err
	}
	return res.Checks, err
}
