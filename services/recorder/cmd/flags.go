package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/envflag"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/schema"
	"github.com/ork-go/ork/pkg/store/storeopen"
	"github.com/ork-go/ork/services/recorder"
)

// options are the recorder's own flags.
type options struct {
	dbURL     string
	noMigrate bool
	recorder  recorder.Config
}

// flags defines the recorder's own flags, each defaulting to its ORK_* variable.
func (o *options) flags(s *envflag.Set) {
	s.StringVar(&o.dbURL, "db", "ORK_DB_URL", storeopen.DefaultURL, "database URL: sqlite://PATH, postgres://..., file://DIR")
	s.BoolVar(&o.noMigrate, "no-migrate", "ORK_NO_MIGRATE", false, "do not apply schema migrations at start")
	s.IntVar(&o.recorder.BatchSize, "batch-size", "ORK_RECORDER_BATCH_SIZE", recorder.BatchSizeDefault,
		"most messages written in one transaction")
	s.DurationVar(&o.recorder.BatchWait, "batch-wait", "ORK_RECORDER_BATCH_WAIT", recorder.BatchWaitDefault,
		"wait for more messages after a batch's first")
}

func (o *options) check() error { return o.recorder.WithDefaults().Validate() }

// openStore migrates the database (unless --no-migrate) and opens it.
func (o *options) openStore(ctx context.Context, log *zap.Logger) (store.Store, error) {
	log.Info("recorder opening the database", zap.String("db", storeopen.Redact(o.dbURL)), zap.Bool("migrate", !o.noMigrate))
	if !o.noMigrate {
		if err := schema.Up(ctx, o.dbURL); err != nil {
			return nil, err
		}
	}
	return storeopen.Open(ctx, o.dbURL)
}

// closeStore closes the database, last, once the recorder has drained.
func (o *options) closeStore(st store.Store, log *zap.Logger) {
	if err := st.Close(); err != nil {
		log.Error("closing the database", zap.Error(err))
	}
}
