// Package notifier holds the notifier service's default alert rules
// (alerts.yaml), used when ALERT_RULES_FILE is not set.
package notifier

import _ "embed"

// DefaultAlertRules is alerts.yaml.
//
//go:embed alerts.yaml
var DefaultAlertRules []byte
