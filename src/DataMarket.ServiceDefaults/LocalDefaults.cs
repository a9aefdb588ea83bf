namespace DataMarket.ServiceDefaults;

/// <summary>
/// Where the servers are when nothing is configured: loopback, with the role, password and database that
/// <c>deploy/local/infra.sh</c> creates. Every service and command falls back to these same values.
/// </summary>
public static class LocalDefaults
{
    public const string PostgresConnectionString = "Host=127.0.0.1;Port=5432;Username=datamarket;Password=datamarket;Database=datamarket";

    public const string RabbitMqUri = "amqp://guest:guest@127.0.0.1:5672/";
}
