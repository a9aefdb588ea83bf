using DataMarket.ServiceDefaults.Security;

namespace DataMarket.Gateway.Web;

public static class WebPaths
{
    public static string Home(string? role) => role switch
    {
        Roles.Seller => "/seller",
        Roles.Buyer => "/buyer",
        Roles.Operator => "/operator",
        _ => "/",
    };
}
