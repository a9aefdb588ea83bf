using DataMarket.Contracts;
using DataMarket.ValuationWorker.Infrastructure;
using MassTransit;

namespace DataMarket.ValuationWorker.Consumers;

/// <summary>
/// Computes a valuation and publishes the outcome. Bad content becomes <see cref="ValuationFailed"/> at once;
/// anything else is left to the endpoint's retry policy, and after that to the error queue and a
/// <c>Fault&lt;RequestValuation&gt;</c> that the catalog turns into a failed valuation.
/// </summary>
public sealed class RequestValuationConsumer(ValuationRunner runner, ILogger<RequestValuationConsumer> logger) : IConsumer<RequestValuation>
{
    public async Task Consume(ConsumeContext<RequestValuation> context)
    {
        var request = context.Message;
        try
        {
            var completed = await runner.RunAsync(
                request,
                (trainingPoints, testPoints) => context.Publish(new ValuationStarted
                {
                    ValuationId = request.ValuationId,
                    TrainingPoints = trainingPoints,
                    TestPoints = testPoints,
                    StartedAt = DateTimeOffset.UtcNow,
                }),
                context.CancellationToken);
            await context.Publish(completed);
        }
        catch (ValuationRejectedException exception)
        {
            logger.LogWarning("Valuation {ValuationId} rejected: {Reason}", request.ValuationId, exception.Message);
            await context.Publish(new ValuationFailed
            {
                ValuationId = request.ValuationId,
                Reason = exception.Message,
                FailedAt = DateTimeOffset.UtcNow,
            });
        }
    }
}

public sealed class RequestValuationConsumerDefinition : ConsumerDefinition<RequestValuationConsumer>
{
    public RequestValuationConsumerDefinition()
    {
        // Valuations are CPU-bound and parallel inside; one at a time per worker keeps memory predictable.
        ConcurrentMessageLimit = 1;
    }

    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<RequestValuationConsumer> consumerConfigurator,
        IRegistrationContext context)
    {
        endpointConfigurator.UseMessageRetry(retry =>
        {
            retry.Ignore<ValuationRejectedException>();
            retry.Intervals(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5));
        });
    }
}
