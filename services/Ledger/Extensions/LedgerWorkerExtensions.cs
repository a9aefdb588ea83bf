using DataMarket.Contracts;
using DataMarket.LedgerWorker.Consumers;
using FluentValidation;
using MassTransit;
using DataMarket.ServiceDefaults.Ledger;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

public static class LedgerWorkerExtensions
{
    /// <summary>The ledger (its database and outbox relay) and what its consumers need.</summary>
    public static IServiceCollection AddLedgerWorker(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddLedger(configuration);
        services.AddSingleton<IValidator<CommitTransfers>, CommitTransfersValidator>();
        services.TryAddSingleton(TimeProvider.System);
        return services;
    }

    public static IBusRegistrationConfigurator AddLedgerConsumers(this IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<CommitTransfersConsumer, CommitTransfersConsumerDefinition>();
        return bus;
    }
}
