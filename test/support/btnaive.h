/*
 * btnaive: the backtest replay the slow way, for tests and the benchmark's
 * baseline: every step gathers its window again and takes eng_percentile
 * (what running plan once per step would do), then decides as bt_replay
 * does. Reports the number of changes and the requests in force at the end.
 */
#ifndef OPTIPOD_TEST_BTNAIVE_H
#define OPTIPOD_TEST_BTNAIVE_H

#include <stdint.h>

#include "backtest/backtest.h"

void btnaive_replay(const eng_policy *p, const eng_container *today, const bt_series *s,
                    const bt_period *per, int64_t *changes, eng_rl *cpu_end, eng_rl *mem_end);

#endif
