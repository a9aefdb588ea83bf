using DataMarket.SettlementService.Application;
using Microsoft.Extensions.Logging;
using Quartz;

namespace DataMarket.SettlementService.Jobs;

/// <summary>
/// Runs (or resumes) one period's settlement: the period from the trigger's data when asked on demand, else the month
/// before the firing; unfinished runs of other periods are resumed first. Not concurrent per job in the cluster; the run itself is safe to repeat anyway.
/// </summary>
[DisallowConcurrentExecution]
public sealed class SettlementRunJob(SettlementRunner runner, ILogger<SettlementRunJob> logger) : IJob
{
    public static readonly JobKey Key = new("settlement-run", "settlement");
    public const string PeriodKey = "period";

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        var period = context.MergedJobDataMap.ContainsKey(PeriodKey) && context.MergedJobDataMap.GetString(PeriodKey) is { Length: > 0 } named
            ? named
            : SettlementRunner.PreviousPeriod(context.ScheduledFireTimeUtc ?? context.FireTimeUtc);
        var node = context.Scheduler.SchedulerInstanceId;
        // Earlier periods a provider outage left unfinished are resumed first (same keys, so nothing is paid twice);
        // otherwise their reserved payouts would wait for someone to run them by hand.
        foreach (var open in (await runner.ListAsync(cancellationToken)).Where(r => r.Status != "completed" && r.Period != period))
        {
            logger.LogInformation("Resuming unfinished settlement run {Period} on {Node}", open.Period, node);
            await runner.RunAsync(open.Period, node, cancellationToken);
        }

        logger.LogInformation("Settlement run {Period} on {Node}", period, node);
        var run = await runner.RunAsync(period, node, cancellationToken);
        logger.LogInformation("Settlement run {Period}: {Status}, {Paid} paid, reconciliation {Clean}", period, run.Status,
            run.Payouts.Count(p => p.Status == "paid"), run.Reconciliation?.Clean switch { true => "clean", false => "MISMATCHED", null => "pending" });
    }
}

/// <summary>Asks the scheduler for a run of one period now (on demand).</summary>
public sealed class SettlementScheduler(ISchedulerFactory schedulers)
{
    public async Task TriggerAsync(string period, CancellationToken cancellationToken)
    {
        SettlementRunner.ValidatePeriod(period);
        var scheduler = await schedulers.GetScheduler(cancellationToken);
        await scheduler.TriggerJob(SettlementRunJob.Key, new JobDataMap { [SettlementRunJob.PeriodKey] = period }, cancellationToken);
    }
}
