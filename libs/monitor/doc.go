// Package monitor is the arithmetic of model monitoring, free of I/O: the
// drift of scored data against a model's training profile (population
// stability index, PSI, per feature and of the score), the realized
// performance of a model once outcomes are known, the risk bands that map a
// failure probability to a risk level, and the rule that promotes a shadow
// challenger over the champion on realized performance.
package monitor
