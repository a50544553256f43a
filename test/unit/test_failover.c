/*
 * Leader failover under load in make test: test/tools/soak --failover with short lease
 * timing (the replicas get --leader-election-lease-duration 2s, -renew-deadline 1500ms,
 * -retry-period 500ms). Two optipod processes against the fake API server and a real
 * Prometheus; both policies switch to Auto, and the leader is SIGKILLed at its first write
 * of the burst. The tool passes when the follower leads within leaseDuration +
 * retryPeriod (+ scheduling slack) of the leader's last renewal, every workload is
 * written exactly once (none lost, none twice, no recommendation written again), the
 * write invariants hold and the follower exits 0 on SIGTERM; its summary is printed here.
 * make soak runs the same with client-go's default timing.
 */
#include "test.h"
#include "support/proc.h"
#include "support/promserver.h"

#include <unistd.h>

static void test_leader_failover_under_a_write_burst(void)
{
    if (!promsrv_available())
        test_skip("prometheus and promtool are not installed (make deps)");
    char soak[512], optipod[512], out[600];
    snprintf(soak, sizeof soak, "%s", test_built("tools/soak"));
    snprintf(optipod, sizeof optipod, "%s", test_built("optipod"));
    snprintf(out, sizeof out, "%s/failover", test_tmpdir());
    /* slack: the bound is checked on a machine shared with the rest of make test */
    char *argv[] = {soak,
                    "--failover",
                    "--optipod",
                    optipod,
                    "--out",
                    out,
                    "--lease-duration",
                    "2s",
                    "--renew-deadline",
                    "1500ms",
                    "--retry-period",
                    "500ms",
                    "--lease-slack",
                    "1s",
                    NULL};
    static proc p;
    proc_start(&p, argv);
    int rc = proc_wait_exit(&p, 180);
    const char *sum = strstr(p.out, "failover: ");
    printf("%s", sum ? sum : p.out);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_STR_CONTAINS(p.out, "failover: PASS");
    ASSERT_STR_CONTAINS(p.out, "lost 0, written more than once 0, same recommendation twice 0");
}

int main(void)
{
    TEST_RUN(test_leader_failover_under_a_write_burst);
    return test_summary();
}
