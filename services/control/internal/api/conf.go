package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"

	"github.com/cmmsflow/cmmsflow/libs/events"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

var idempotencyKeyRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// MaxConfBytes bounds a run's conf as JSON.
const MaxConfBytes = 64 << 10

// Conf is a run's conf: the JSON object as triggered (Airflow's conf: any
// keys, values of any JSON type) and the values of the pipeline's declared
// keys, which is what the steps read.
type Conf struct {
	JSON  []byte
	Known map[string]string
}

// ParseConf checks a conf object against the registry's rules for pl
// (events.Pipeline.ValidateConf) and its size; a refusal is an
// InvalidArgument status naming the key.
func ParseConf(pl events.Pipeline, obj map[string]any) (Conf, error) {
	c, err := parseConf(pl, obj)
	if err != nil {
		st, _ := toStatus(err)
		return Conf{}, st.Err()
	}
	return c, nil
}

func parseConf(pl events.Pipeline, obj map[string]any) (Conf, error) {
	known, err := pl.ValidateConf(obj)
	if err != nil {
		return Conf{}, invalid("%s", err)
	}
	if obj == nil {
		obj = map[string]any{}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return Conf{}, invalid("conf: %v", err)
	}
	if len(b) > MaxConfBytes {
		return Conf{}, invalid("conf: %d bytes as JSON, more than %d", len(b), MaxConfBytes)
	}
	return Conf{JSON: b, Known: known}, nil
}

// requestConf is the conf of a trigger request: conf (string values) or
// conf_json (any JSON object), not both.
func requestConf(pl events.Pipeline, req *controlv1.TriggerPipelineRequest) (Conf, error) {
	obj := map[string]any{}
	switch {
	case req.GetConfJson() != "" && len(req.GetConf()) > 0:
		return Conf{}, invalid("conf, conf_json: set one of them")
	case req.GetConfJson() != "":
		if len(req.GetConfJson()) > MaxConfBytes {
			return Conf{}, invalid("conf_json: %d bytes, more than %d", len(req.GetConfJson()), MaxConfBytes)
		}
		d := json.NewDecoder(bytes.NewReader([]byte(req.GetConfJson())))
		if err := d.Decode(&obj); err != nil || obj == nil || d.More() {
			return Conf{}, invalid("conf_json: not a JSON object")
		}
	default:
		for k, v := range req.GetConf() {
			obj[k] = v
		}
	}
	return parseConf(pl, obj)
}

// sameConf reports whether two confs are the same JSON value.
func sameConf(a string, b []byte) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func validateIdempotencyKey(k string) error {
	if k != "" && !idempotencyKeyRE.MatchString(k) {
		return invalid("idempotency_key: must be 1-128 characters of [A-Za-z0-9._:-]")
	}
	return nil
}
