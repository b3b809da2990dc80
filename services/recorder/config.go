package recorder

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of Config.
const (
	BatchSizeDefault    = 1000
	BatchWaitDefault    = 10 * time.Millisecond
	RetryMinDefault     = 100 * time.Millisecond
	RetryMaxDefault     = 5 * time.Second
	IsolateAfterDefault = 5
	WriteTimeoutDefault = 30 * time.Second
	AckWaitDefault      = time.Minute
	// OrphanDeliveriesDefault and OrphanDelayDefault give an event whose run is not recorded yet
	// three chances, a second apart, before it is dead-lettered.
	OrphanDeliveriesDefault = 3
	OrphanDelayDefault      = time.Second
	// MaxAckPendingFactor times BatchSize is the default MaxAckPending: room for the batch being
	// written and the next one being pulled.
	MaxAckPendingFactor = 4
)

// Durable consumer names.
const (
	DurableEvents = "recorder"
	DurableLogs   = "recorder-logs"
)

// Config configures the recorder.
type Config struct {
	// BatchSize is the most messages written in one transaction.
	BatchSize int
	// BatchWait is how long a batch waits for more messages after its first one.
	BatchWait time.Duration
	// RetryMin and RetryMax bound the exponential backoff between failed writes of a batch.
	RetryMin time.Duration
	RetryMax time.Duration
	// IsolateAfter is how many failed writes of a multi-message batch lead to writing it one message
	// at a time, to find and dead-letter a message the store rejects.
	IsolateAfter int
	// WriteTimeout bounds one ApplyBatch call.
	WriteTimeout time.Duration
	// AckWait is the consumers' redelivery timeout. Messages of a batch being retried are kept in
	// progress, so it must exceed WriteTimeout + RetryMax.
	AckWait time.Duration
	// OrphanDeliveries is how many times an event naming an unknown run or task is delivered
	// (OrphanDelay apart) before it is dead-lettered; 1 dead-letters it at once. Waiting covers a
	// run.submitted that is redelivered behind the run's later events.
	OrphanDeliveries int
	OrphanDelay      time.Duration
	// MaxAckPending bounds unacknowledged messages per consumer; 0 means MaxAckPendingFactor*BatchSize.
	MaxAckPending int
	// Metrics, when set, records the recorder's metrics (NewMetrics); nil records nothing.
	Metrics *Metrics
}

// WithDefaults returns the config with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.BatchSize == 0 {
		c.BatchSize = BatchSizeDefault
	}
	if c.BatchWait == 0 {
		c.BatchWait = BatchWaitDefault
	}
	if c.RetryMin == 0 {
		c.RetryMin = RetryMinDefault
	}
	if c.RetryMax == 0 {
		c.RetryMax = RetryMaxDefault
	}
	if c.IsolateAfter == 0 {
		c.IsolateAfter = IsolateAfterDefault
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = WriteTimeoutDefault
	}
	if c.AckWait == 0 {
		c.AckWait = AckWaitDefault
	}
	if c.OrphanDeliveries == 0 {
		c.OrphanDeliveries = OrphanDeliveriesDefault
	}
	if c.OrphanDelay == 0 {
		c.OrphanDelay = OrphanDelayDefault
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = MaxAckPendingFactor * c.BatchSize
	}
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.BatchSize < 1 || c.BatchSize > 100_000:
		return fmt.Errorf("recorder: BatchSize must be 1..100000, got %d", c.BatchSize)
	case c.BatchWait < 0:
		return fmt.Errorf("recorder: BatchWait must not be negative, got %s", c.BatchWait)
	case c.RetryMin <= 0:
		return fmt.Errorf("recorder: RetryMin must be positive, got %s", c.RetryMin)
	case c.RetryMax < c.RetryMin:
		return fmt.Errorf("recorder: RetryMax (%s) must be at least RetryMin (%s)", c.RetryMax, c.RetryMin)
	case c.IsolateAfter < 1:
		return fmt.Errorf("recorder: IsolateAfter must be positive, got %d", c.IsolateAfter)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("recorder: WriteTimeout must be positive, got %s", c.WriteTimeout)
	case c.AckWait <= c.WriteTimeout+c.RetryMax:
		return fmt.Errorf("recorder: AckWait (%s) must exceed WriteTimeout + RetryMax (%s)", c.AckWait, c.WriteTimeout+c.RetryMax)
	case c.OrphanDeliveries < 1:
		return fmt.Errorf("recorder: OrphanDeliveries must be positive, got %d", c.OrphanDeliveries)
	case c.OrphanDelay < 0:
		return fmt.Errorf("recorder: OrphanDelay must not be negative, got %s", c.OrphanDelay)
	case c.MaxAckPending < c.BatchSize:
		return fmt.Errorf("recorder: MaxAckPending (%d) must be at least BatchSize (%d)", c.MaxAckPending, c.BatchSize)
	}
	return nil
}

var errNilDependency = errors.New("recorder: bus, store and logger are required")
