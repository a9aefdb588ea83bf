using System.Text.RegularExpressions;
using DataMarket.Gateway.Application;
using DataMarket.ServiceDefaults.Security;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace DataMarket.Gateway.Infrastructure;

/// <summary>
/// Every forwarded request that moves money, or decides where money goes, is written to the audit log with who sent
/// it, when, the path and how the service answered: purchases, refunds, settlement runs, payout destinations and
/// price terms. Reads are not recorded.
/// </summary>
public static partial class MoneyAuditTransform
{
    public static void Apply(TransformBuilderContext context) =>
        context.AddResponseTransform(async transform =>
        {
            var request = transform.HttpContext.Request;
            if (Action(request.Method, request.Path.Value ?? string.Empty) is not { } action)
            {
                return;
            }

            var status = transform.ProxyResponse is { } response ? (int)response.StatusCode : transform.HttpContext.Response.StatusCode;
            var services = transform.HttpContext.RequestServices;
            try
            {
                await services.GetRequiredService<AccountService>().RecordAsync(
                    transform.HttpContext.User.AccountId(), action, $"{request.Path.Value} answered {status}", CancellationToken.None);
            }
            catch (Exception exception)
            {
                // The service has already acted; failing the answer would only hide that from the caller. The log keeps it.
                services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(MoneyAuditTransform))
                    .LogError(exception, "Could not audit {Action} {Path} by {Account} (answered {Status})", action, request.Path.Value, transform.HttpContext.User.AccountId(), status);
            }
        });

    /// <summary>The audit action for a request that moves money, or null for any other request.</summary>
    public static string? Action(string method, string path) => (method, path) switch
    {
        ("POST", _) when Purchase().IsMatch(path) => "purchase",
        ("POST", _) when Refund().IsMatch(path) => "refund a purchase",
        ("POST", _) when Dispute().IsMatch(path) => "record a dispute",
        ("POST", _) when SettlementRun().IsMatch(path) => "run a settlement",
        ("POST", _) when Destination().IsMatch(path) => "set a payout destination",
        ("PUT", _) when Terms().IsMatch(path) => "set price terms",
        _ => null,
    };

    [GeneratedRegex("^/api/purchases/?$", RegexOptions.IgnoreCase)]
    private static partial Regex Purchase();

    [GeneratedRegex("^/api/purchases/[^/]+/refund/?$", RegexOptions.IgnoreCase)]
    private static partial Regex Refund();

    [GeneratedRegex("^/api/purchases/[^/]+/dispute/?$", RegexOptions.IgnoreCase)]
    private static partial Regex Dispute();

    [GeneratedRegex("^/api/settlements/[^/]+/run/?$", RegexOptions.IgnoreCase)]
    private static partial Regex SettlementRun();

    [GeneratedRegex("^/api/sellers/[^/]+/destination/?$", RegexOptions.IgnoreCase)]
    private static partial Regex Destination();

    [GeneratedRegex("^/api/terms/[^/]+/?$", RegexOptions.IgnoreCase)]
    private static partial Regex Terms();
}
