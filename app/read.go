package app

import (
	"context"
	"time"
)

// ReadRun reads run id and its events and projects them as of now: a finished run compared
// with its baseline, the running tasks of lost workers marked. It returns the events too,
// for a view that follows the run's stream after the last of them.
func (c *Core) ReadRun(ctx context.Context, id string, now time.Time) (*Projection, []*Event, error) {
	r, err := c.Runs.Get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	evs, err := c.Log.ReadAll(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	p := Project(r, evs, now, nil)
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
	return p, evs, nil
}
