using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DataMarket.Catalog.Application;
using DataMarket.Catalog.Model;
using Microsoft.EntityFrameworkCore;

namespace DataMarket.Catalog.Infrastructure;

/// <summary>
/// The signed notice a buyer's callback URL gets when a valuation ends. The body names the valuation and its final
/// status (never values: the buyer reads those with their key); the header
/// <c>DataMarket-Signature: t=UNIX_SECONDS,v1=HEX</c> is HMAC-SHA256 under the valuation's callback secret of
/// <c>"{t}.{body}"</c>, so the receiver can check who sent it and refuse an old one replayed.
/// </summary>
public static class ValuationCallbacks
{
    public const string HttpClientName = "valuation-callbacks";
    public const string SignatureHeader = "DataMarket-Signature";
    public const string DeliveryHeader = "DataMarket-Delivery";

    public static string NewSecret() => "dmcb_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    /// <summary>Adds the notice to the caller's unit of work; call it in the transaction that moved the valuation to a final status.</summary>
    public static async Task EnqueueAsync(CatalogDbContext db, Guid valuationId, CancellationToken cancellationToken)
    {
        if (await db.Valuations.AnyAsync(v => v.Id == valuationId && v.CallbackUrl != null, cancellationToken))
        {
            db.CallbackNotices.Add(new CallbackNotice { ValuationId = valuationId, DueAt = DateTime.UtcNow });
        }
    }

    public static CallbackView View(CallbackNotice notice) => new(
        notice.DeliveredAt is not null ? "delivered" : notice.GaveUpAt is not null ? "failed" : "pending",
        notice.Attempts, notice.DeliveredAt, notice.LastError);

    public static string Body(ValuationRun valuation) => JsonSerializer.Serialize(new
    {
        valuationId = valuation.Id,
        status = valuation.Status.ToString(),
        finishedAt = valuation.FinishedAt,
        error = valuation.Error,
        totalUtility = valuation.TotalUtility,
    });

    public static string Signature(string secret, long unixSeconds, string body)
    {
        var t = unixSeconds.ToString(CultureInfo.InvariantCulture);
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{t}.{body}"));
        return $"t={t},v1={Convert.ToHexStringLower(mac)}";
    }

    /// <summary>
    /// Whether an address may be called when private ones are not allowed: not loopback, not private (RFC 1918, IPv6
    /// unique-local), not link-local, not shared (100.64/10), not unspecified or multicast; IPv4-mapped IPv6 is judged
    /// as the IPv4 address it carries.
    /// </summary>
    public static bool IsPublic(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (IPAddress.IsLoopback(address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
        {
            return false;
        }

        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var b = address.GetAddressBytes();
            return !(b[0] == 0 || b[0] == 10 || b[0] == 127 || b[0] >= 224
                || (b[0] == 172 && b[1] >= 16 && b[1] <= 31)
                || (b[0] == 192 && b[1] == 168)
                || (b[0] == 169 && b[1] == 254)
                || (b[0] == 100 && b[1] >= 64 && b[1] <= 127));
        }

        var bytes = address.GetAddressBytes();
        return !(address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6Multicast || (bytes[0] & 0xFE) == 0xFC);
    }

    /// <summary>
    /// The handler callbacks go through: no redirects (a redirect could point anywhere), and unless private addresses
    /// are allowed, a connection only to a public address the host resolves to, checked at connect time so a DNS
    /// answer cannot change between the check and the call.
    /// </summary>
    public static SocketsHttpHandler Handler(CallbackOptions options) => new()
    {
        AllowAutoRedirect = false,
        ConnectCallback = async (context, cancellationToken) =>
        {
            var host = context.DnsEndPoint.Host;
            var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, cancellationToken);
            var allowed = options.AllowPrivateAddresses ? addresses : addresses.Where(IsPublic).ToArray();
            if (allowed.Length == 0)
            {
                throw new HttpRequestException($"the callback host '{host}' has no public address");
            }

            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(allowed, context.DnsEndPoint.Port, cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };
}

/// <summary>
/// Delivers due callback notices: a 2xx answer delivers one; anything else (or no answer within the timeout) is
/// tried again after a delay that doubles from <see cref="CallbackOptions.FirstRetry"/> up to an hour, until
/// <see cref="CallbackOptions.MaxAttempts"/> attempts, and the valuation shows how it went. The receiver may see a
/// notice twice (an answer lost on the way back); <c>DataMarket-Delivery</c> names it so a second copy can be ignored.
/// </summary>
public sealed class CallbackDispatcher(
    IServiceScopeFactory scopes, IHttpClientFactory clients, CatalogOptions options, ILogger<CallbackDispatcher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Callbacks.PollInterval);
        do
        {
            try
            {
                await DeliverDueAsync(stoppingToken);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                logger.LogWarning(exception, "Callback delivery failed; retrying");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private async Task DeliverDueAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CatalogDbContext>();
        var now = DateTime.UtcNow;
        var due = await db.CallbackNotices
            .Where(n => n.DeliveredAt == null && n.GaveUpAt == null && n.DueAt <= now)
            .OrderBy(n => n.DueAt)
            .Take(20)
            .ToListAsync(cancellationToken);
        foreach (var notice in due)
        {
            var valuation = await db.Valuations.AsNoTracking().SingleAsync(v => v.Id == notice.ValuationId, cancellationToken);
            var error = await SendAsync(valuation, cancellationToken);
            notice.Attempts++;
            if (error is null)
            {
                notice.DeliveredAt = DateTime.UtcNow;
                notice.LastError = null;
            }
            else
            {
                notice.LastError = error.Length > 500 ? error[..500] : error;
                if (notice.Attempts >= options.Callbacks.MaxAttempts)
                {
                    notice.GaveUpAt = DateTime.UtcNow;
                    logger.LogWarning("Gave up the callback of valuation {ValuationId} after {Attempts} attempts: {Error}", valuation.Id, notice.Attempts, error);
                }
                else
                {
                    var delay = options.Callbacks.FirstRetry * Math.Pow(2, notice.Attempts - 1);
                    notice.DueAt = DateTime.UtcNow + (delay < TimeSpan.FromHours(1) ? delay : TimeSpan.FromHours(1));
                }
            }

            await db.SaveChangesAsync(cancellationToken);
        }
    }

    /// <summary>Null when the receiver took the notice, else what went wrong (for the buyer to read on the valuation).</summary>
    private async Task<string?> SendAsync(ValuationRun valuation, CancellationToken cancellationToken)
    {
        var body = ValuationCallbacks.Body(valuation);
        using var request = new HttpRequestMessage(HttpMethod.Post, valuation.CallbackUrl) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add(ValuationCallbacks.SignatureHeader, ValuationCallbacks.Signature(valuation.CallbackSecret!, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), body));
        request.Headers.Add(ValuationCallbacks.DeliveryHeader, valuation.Id.ToString());
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Callbacks.Timeout);
        try
        {
            using var response = await clients.CreateClient(ValuationCallbacks.HttpClientName).SendAsync(request, timeout.Token);
            return response.IsSuccessStatusCode ? null : $"the callback URL answered {(int)response.StatusCode}";
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return $"the callback URL did not answer within {options.Callbacks.Timeout.TotalSeconds:0} s";
        }
        catch (HttpRequestException exception)
        {
            return exception.Message;
        }
    }
}
