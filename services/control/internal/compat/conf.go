package compat

import (
	"fmt"
)

// Airflow's conf is any JSON object; a pipeline's conf is string values of
// declared keys. stringConf keeps the object when every value is a string.
func stringConf(conf map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(conf))
	for k, v := range conf {
		sv, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("conf: key %q: the value must be a string", k)
		}
		out[k] = sv
	}
	return out, nil
}
