using DataMarket.ServiceDefaults.Security;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace DataMarket.Gateway.Infrastructure;

/// <summary>
/// What a forwarded request carries to a service: the caller's credentials and any identity headers it sent are
/// removed, and a token the gateway signs for this account (two minutes' life) is the only statement of who calls.
/// </summary>
public static class ServiceTokenTransform
{
    private static readonly string[] s_stripped = ["Authorization", "Cookie", "X-Api-Key", "X-Actor-Id"];

    public static void Apply(TransformBuilderContext context, ServiceTokenIssuer issuer)
    {
        context.AddRequestTransform(transform =>
        {
            foreach (var header in s_stripped)
            {
                transform.ProxyRequest.Headers.Remove(header);
            }

            var user = transform.HttpContext.User;
            if (user.Identity?.IsAuthenticated == true)
            {
                var token = issuer.Issue(user.AccountId(), user.FindFirst("role")?.Value ?? string.Empty, user.FindFirst("name")?.Value ?? string.Empty);
                transform.ProxyRequest.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            }

            return ValueTask.CompletedTask;
        });
    }
}
