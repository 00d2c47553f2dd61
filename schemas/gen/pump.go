package gen

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
)

// Message is one generated Kafka record.
type Message struct {
	Key, Value []byte
}

// Pump generates records stamped with the current time at about rate per
// second and hands them to send in small batches, until ctx ends or send
// fails. It paces by the clock, not by sleeping a fixed step, so a slow send
// is caught up rather than lowering the rate.
func Pump(ctx context.Context, g *Generator, rate int, send func(context.Context, []Message) error) error {
	if rate <= 0 {
		return nil
	}
	const tick = 20 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	var sent int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			due := int64(now.Sub(start).Seconds()*float64(rate)) - sent
			if due <= 0 {
				continue
			}
			batch := make([]Message, 0, due)
			for i := int64(0); i < due; i++ {
				k, v, _ := g.Next(now)
				batch = append(batch, Message{Key: k, Value: v})
			}
			if err := send(ctx, batch); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			sent += due
		}
	}
}

// KafkaSender is a send function for Pump that writes with w; written, when
// not nil, is told how many records each successful write carried.
func KafkaSender(w *kafka.Writer, written func(n int)) func(context.Context, []Message) error {
	return func(ctx context.Context, msgs []Message) error {
		km := make([]kafka.Message, len(msgs))
		for i, m := range msgs {
			km[i] = kafka.Message{Key: m.Key, Value: m.Value}
		}
		if err := w.WriteMessages(ctx, km...); err != nil {
			return err
		}
		if written != nil {
			written(len(msgs))
		}
		return nil
	}
}
