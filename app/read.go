package app

import (
	"context"
	"time"
)

// ReadRun reads run id and projects its events as of now: a finished run compared with its
// baseline, the running tasks of lost workers marked. It returns the stream entry ID of the
// latest event projected too, for a view that follows the run's stream after it. The events
// come from the run's kept projection (see Projections): only those appended since the last
// read are read from the log.
func (c *Core) ReadRun(ctx context.Context, id string, now time.Time) (*Projection, string, error) {
	r, err := c.Runs.Get(ctx, id)
	if err != nil {
		if ErrorCode(err) == ENotFound {
			c.Projections.Forget(id)
		}
		return nil, "", err
	}
	p, last, err := c.Projections.Read(ctx, r, now)
	if err != nil {
		return nil, "", err
	}
	if p.Run.Status == StatusFinished {
		b, err := c.Runs.Baseline(ctx, p.Run)
		if err != nil {
			c.Logger.WarnContext(ctx, "cannot look up the run's baseline", "run", id, "err", err)
		}
		p.CompareWith(b)
	}
	if err := c.MarkOrphans(ctx, p); err != nil {
		c.Logger.WarnContext(ctx, "cannot check the run's workers", "run", id, "err", err)
	}
	return p, last, nil
}
