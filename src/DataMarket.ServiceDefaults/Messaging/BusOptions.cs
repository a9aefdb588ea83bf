namespace DataMarket.ServiceDefaults.Messaging;

public enum BusTransport
{
    /// <summary>MassTransit's in-memory transport: everything in one process, nothing to install.</summary>
    InMemory,
    RabbitMq,
}

/// <summary>Bound from the <c>Bus</c> configuration section (environment: <c>Bus__Transport</c>, <c>Bus__RabbitMqUri</c>, ...).</summary>
public sealed class BusOptions
{
    public const string SectionName = "Bus";

    public BusTransport Transport { get; set; } = BusTransport.RabbitMq;

    /// <summary>AMQP URI; loopback with RabbitMQ's default account unless configured.</summary>
    public string RabbitMqUri { get; set; } = LocalDefaults.RabbitMqUri;

    /// <summary>Prefix for queue names, so that several environments (or test runs) can share one broker.</summary>
    public string? EndpointPrefix { get; set; }

    /// <summary>Queues are deleted when their consumers disconnect; for tests and throw-away runs.</summary>
    public bool TemporaryEndpoints { get; set; }
}
