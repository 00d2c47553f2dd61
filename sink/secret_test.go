package sink

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"gopkg.in/yaml.v3"
)

func TestSecretNeverPrints(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	s := Secret(key)
	tn := Tenant{ID: "org_x", APIKey: s, AppKey: Secret("app-" + key)}

	var outs []string
	for _, verb := range []string{"%s", "%v", "%+v", "%#v", "%q", "%x", "%X", "%d", "%10s"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, tn), fmt.Sprintf(verb, &tn))
	}
	outs = append(outs, s.String(), s.GoString(), fmt.Sprint(s), fmt.Sprintln(tn))
	outs = append(outs, fmt.Errorf("wrapped: %w", errors.New(fmt.Sprint(tn))).Error())
	j, _ := json.Marshal(tn)
	outs = append(outs, string(j))
	y, _ := yaml.Marshal(tn)
	outs = append(outs, string(y))

	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	log.Info("tenant", zap.Any("tenant", tn), zap.Stringer("key", s), zap.Any("raw", s), zap.Reflect("r", tn))
	for _, e := range logs.All() {
		enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, buf.String())
	}

	for _, o := range outs {
		if strings.Contains(o, key) || strings.Contains(o, "0123456789") {
			t.Errorf("key printed: %s", o)
		}
	}
	if got := fmt.Sprint(s); got != "<secret>" {
		t.Errorf("Sprint = %q, want <secret>", got)
	}
	var back map[string]any
	if err := json.Unmarshal(j, &back); err != nil || back["APIKey"] != "<secret>" || back["AppKey"] != "<secret>" {
		t.Errorf("JSON = %s (%v)", j, err)
	}
	if string(s) != key {
		t.Errorf("the value itself must stay readable to the code that sends it")
	}
}
