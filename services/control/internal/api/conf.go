package api

import (
	"regexp"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

var idempotencyKeyRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// validateConf is the registry's conf check as an InvalidArgument error.
func validateConf(pl events.Pipeline, conf map[string]string) error {
	if err := pl.ValidateConf(conf); err != nil {
		return invalid("%s", err)
	}
	return nil
}

func validateIdempotencyKey(k string) error {
	if k != "" && !idempotencyKeyRE.MatchString(k) {
		return invalid("idempotency_key: must be 1-128 characters of [A-Za-z0-9._:-]")
	}
	return nil
}
