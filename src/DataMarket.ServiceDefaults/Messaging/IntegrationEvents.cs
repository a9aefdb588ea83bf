using System.Text.Json;
using MassTransit;

namespace DataMarket.ServiceDefaults.Messaging;

/// <summary>
/// How integration events are stored in outbox tables (type name plus JSON) and published from there: the one
/// format every outbox in the market shares.
/// </summary>
public static class IntegrationEvents
{
    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web);

    public static string TypeName<T>() => typeof(T).FullName!;

    public static string Serialize<T>(T message) => JsonSerializer.Serialize(message, s_json);

    /// <summary>Rebuilds a message from its outbox row; only types from the contracts assembly are accepted.</summary>
    public static object Deserialize(string typeName, string json)
    {
        var type = typeof(Contracts.RequestValuation).Assembly.GetType(typeName)
            ?? throw new InvalidOperationException($"unknown integration event type '{typeName}'");
        return JsonSerializer.Deserialize(json, type, s_json)
            ?? throw new InvalidOperationException($"an outbox row of type '{typeName}' has an empty body");
    }

    /// <summary>Publishes a stored event with its outbox message id, so consumers can recognise a re-send.</summary>
    public static Task PublishAsync(IPublishEndpoint bus, string typeName, string json, Guid messageId, CancellationToken cancellationToken)
    {
        var message = Deserialize(typeName, json);
        return bus.Publish(message, message.GetType(), context => context.MessageId = messageId, cancellationToken);
    }
}
