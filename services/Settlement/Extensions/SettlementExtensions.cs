using DataMarket.Catalog.Infrastructure;
using DataMarket.Catalog.Model;
using DataMarket.ServiceDefaults.Ledger;
using DataMarket.SettlementService.Application;
using DataMarket.SettlementService.Infrastructure;
using DataMarket.SettlementService.Jobs;
using FluentValidation;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Quartz;

namespace Microsoft.Extensions.DependencyInjection;

public static class SettlementExtensions
{
    /// <summary>
    /// Quotes, purchases, refunds, downloads, payout destinations and royalty settlement runs: the settlement store,
    /// the ledger (shared with the ledger worker when it runs in this process), the catalog's database (read-only),
    /// the payment rails and the Quartz scheduler that runs settlements.
    /// </summary>
    public static IServiceCollection AddSettlement(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection(SettlementOptions.SectionName).Get<SettlementOptions>() ?? new SettlementOptions();
        options.ConnectionString ??= configuration.GetConnectionString("Settlement");
        services.AddSettlementCore(options);

        // One ledger host per process: the ledger worker's when it runs here (embedded mode), else this service's own.
        if (!services.Any(d => d.ServiceType == typeof(LedgerHost)))
        {
            services.AddLedger(configuration);
        }

        services.AddSingleton(provider =>
        {
            var host = provider.GetRequiredService<LedgerHost>();
            return new LedgerAccess(async _ => (await host.Database).Ledger);
        });

        // The catalog's database, read-only, when the catalog itself does not run in this process.
        if (!services.Any(d => d.ServiceType == typeof(CatalogDbContext)))
        {
            services.AddCatalogDatabase(configuration);
        }

        services.AddScoped<CatalogReader>();
        services.AddScoped<MarketService>();
        services.AddScoped<StripeWebhooks>();
        services.AddSingleton<SettlementScheduler>();
        services.AddSettlementScheduler(options);
        return services;
    }

    /// <summary>What a settlement run needs without a host (the CLI's <c>settle</c>): store, rails, runner.</summary>
    public static IServiceCollection AddSettlementCore(this IServiceCollection services, SettlementOptions options)
    {
        services.AddSingleton(options);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<SettlementStore>();
        if (options.Rails == RailsKind.Stripe)
        {
            services.AddSingleton<IPaymentRails, StripeRails>();
        }
        else
        {
            services.AddSingleton<IPaymentRails, SandboxRails>();
        }

        services.AddSingleton<DisputeBook>();
        services.AddSingleton<SettlementRunner>();
        services.AddSingleton<IValidator<PublishTermsRequest>, PublishTermsRequestValidator>();
        services.AddSingleton<IValidator<CreateQuoteRequest>, CreateQuoteRequestValidator>();
        services.AddSingleton<IValidator<CreatePurchaseRequest>, CreatePurchaseRequestValidator>();
        return services;
    }

    /// <summary>
    /// Quartz: in memory in embedded mode, the persistent clustered store on PostgreSQL in server mode (its tables
    /// provisioned when missing). The cron trigger comes from configuration; a misfire (the scheduler was down at the
    /// slot) fires once, not once per missed slot.
    /// </summary>
    private static void AddSettlementScheduler(this IServiceCollection services, SettlementOptions options)
    {
        var properties = new Dictionary<string, string?>
        {
            ["quartz.scheduler.instanceName"] = options.Scheduler.InstanceName,
            ["quartz.scheduler.instanceId"] = "AUTO",
        };
        services.AddQuartz(properties, q =>
        {
            if (options.Scheduler.PostgresConnectionString is { } connectionString)
            {
                q.UsePersistentStore(store =>
                {
                    store.UsePostgres(connectionString);
                    store.UseSystemTextJsonSerializer();
                    store.UseClustering(cluster =>
                    {
                        cluster.CheckinInterval = TimeSpan.FromSeconds(2);
                        cluster.CheckinMisfireThreshold = TimeSpan.FromSeconds(5);
                    });
                    store.ProvisionSchema();
                });
            }
            else
            {
                q.UseInMemoryStore();
            }

            q.AddJob<SettlementRunJob>(job => job.WithIdentity(SettlementRunJob.Key).StoreDurably());
            if (options.ScheduleEnabled)
            {
                q.AddTrigger(trigger => trigger
                    .ForJob(SettlementRunJob.Key)
                    .WithIdentity("settlement-monthly", "settlement")
                    .WithCronSchedule(options.Schedule, cron => cron.InTimeZone(TimeZoneInfo.Utc).WithMisfireInstruction(CronTriggerMisfireInstruction.FireAndProceed)));
            }
        });
        services.AddQuartzHostedService(hosted => hosted.WaitForJobsToComplete = true);
    }
}
